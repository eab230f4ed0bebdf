package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// TestEveryComponentOverTLS runs the executor, hyperflow-submit, the metric
// collector and hyperflow-top (headless) against the TLS listener of the
// private RabbitMQ 4.0 broker, which requires client certificates
// (verify_peer, fail_if_no_peer_cert): each takes the same AMQP_TLS_*
// variables. Then --check with a wrong CA names the cause.
func TestEveryComponentOverTLS(t *testing.T) {
	url := testenv.Require(t, "HYPERFLOW_TEST_AMQPS4_URL")
	tlsEnv := []string{
		"AMQP_URL=" + url,
		"AMQP_TLS_CA_FILE=" + testenv.Require(t, "HYPERFLOW_TEST_TLS_CA"),
		"AMQP_TLS_CERT_FILE=" + testenv.Require(t, "HYPERFLOW_TEST_TLS_CERT"),
		"AMQP_TLS_KEY_FILE=" + testenv.Require(t, "HYPERFLOW_TEST_TLS_KEY"),
	}
	env := append(os.Environ(), tlsEnv...)
	queue := "hyperflow.jobs.tls-" + randHex(t, 4)
	exchange := "hyperflow.events.tls-" + randHex(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := func(name string, args ...string) (*exec.Cmd, *harness.SyncBuffer) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		out := &harness.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
		return cmd, out
	}

	collector, collected := start(collectorBin, "--exchange", exchange)
	csv := filepath.Join(t.TempDir(), "jobs.csv")
	top, topOut := start(topBin, "--exchange", exchange, "--csv", csv, "--duration", "60s")
	executor, logs := start(executorBin, "--queue", queue, "--events-exchange", exchange, "--storage", "local",
		"--threads", "1", "--tmp-dir", t.TempDir(), "--connect-attempts", "3")
	harness.WaitFor(t, 30*time.Second, "the executor to consume over TLS", func() bool {
		return strings.Contains(logs.String(), "executor ready")
	})
	ctl := testenv.Require(t, "HYPERFLOW_TEST_RABBITMQ4CTL")
	harness.WaitFor(t, 30*time.Second, "the collector and the monitor to bind their queues", func() bool {
		out, _ := exec.Command(ctl, "list_bindings", "-q", "--no-table-headers", "source_name").Output()
		return strings.Count(string(out), exchange) >= 2
	})

	submit := exec.CommandContext(ctx, submitBin, "--queue", queue, "--timeout-reply", "60s", "--workdir", t.TempDir(), "--",
		"/bin/sh", "-c", "echo over tls")
	submit.Env = env
	out, err := submit.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"exit_status": 0`) && !strings.Contains(string(out), `"exit_status":0`) {
		t.Fatalf("hyperflow-submit over TLS: %v\n%s\nexecutor: %s", err, out, logs.String())
	}
	harness.WaitFor(t, 30*time.Second, "the collector's line", func() bool {
		return strings.Contains(collected.String(), "/bin/sh")
	})

	// The monitor writes its CSV when interrupted.
	top.Process.Signal(os.Interrupt)
	top.Wait()
	data, err := os.ReadFile(csv)
	if err != nil || !strings.Contains(string(data), "/bin/sh") {
		t.Errorf("hyperflow-top over TLS wrote %q (%v); its output:\n%s", data, err, topOut.String())
	}
	executor.Process.Signal(os.Interrupt)
	executor.Wait()
	collector.Process.Signal(os.Interrupt)
	collector.Wait()

	// --check with a CA that did not sign the broker's certificate.
	otherCA := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(otherCA, []byte(selfSignedPEM(t)), 0o600)
	check := exec.CommandContext(ctx, executorBin, "--check", "--queue", queue, "--storage", "local",
		"--amqp-tls-ca-file", otherCA)
	check.Env = env
	checkOut, err := check.CombinedOutput()
	if err == nil {
		t.Errorf("--check with a wrong CA passed:\n%s", checkOut)
	}
	found := false
	for sc := bufio.NewScanner(strings.NewReader(string(checkOut))); sc.Scan(); {
		if l := sc.Text(); strings.HasPrefix(l, "FAIL") && strings.Contains(l, "not signed by a trusted CA") {
			found = true
		}
	}
	if !found {
		t.Errorf("--check does not name the wrong CA:\n%s", checkOut)
	}
}

// selfSignedPEM is a CA certificate made here, which signed nothing.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the broker's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

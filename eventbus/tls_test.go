package eventbus_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// tlsBroker is the TLS listener of the private RabbitMQ 4.0 broker
// (scripts/rabbitmq4.sh): verify_peer and fail_if_no_peer_cert, with the
// CA, client certificate and key it made.
type tlsBroker struct {
	url, ca, cert, key, dir string
}

func newTLSBroker(t *testing.T) tlsBroker {
	return tlsBroker{
		url:  testenv.Require(t, "HYPERFLOW_TEST_AMQPS4_URL"),
		ca:   testenv.Require(t, "HYPERFLOW_TEST_TLS_CA"),
		cert: testenv.Require(t, "HYPERFLOW_TEST_TLS_CERT"),
		key:  testenv.Require(t, "HYPERFLOW_TEST_TLS_KEY"),
		dir:  testenv.Require(t, "HYPERFLOW_TEST_TLS_DIR"),
	}
}

// writeCert makes a key and a certificate for cn, signed by parent (self
// signed when parent is nil), valid from notBefore to notAfter, and writes
// them as PEM files in dir. It returns the paths and the certificate.
func writeCert(t *testing.T, dir, cn string, isCA bool, parent *x509.Certificate, parentKey any, notBefore, notAfter time.Time) (certFile, keyFile string, cert *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile, cert, key
}

// brokerCA loads the CA of the broker's script, to sign client
// certificates with.
func brokerCA(t *testing.T, b tlsBroker) (*x509.Certificate, any) {
	t.Helper()
	certPEM, err := os.ReadFile(b.ca)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(b.dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert, pair.PrivateKey
}

func TestTLSConnects(t *testing.T) {
	b := newTLSBroker(t)
	t.Run("settings", func(t *testing.T) {
		c, err := eventbus.DialWith(b.url, eventbus.DialOptions{TLS: eventbus.TLSFiles{CAFile: b.ca, CertFile: b.cert, KeyFile: b.key}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if info := c.Server(); info.Product != "RabbitMQ" || !info.AtLeast(4, 0) {
			t.Errorf("server %+v, want RabbitMQ 4", info)
		}
		if err := c.DeclareEvents("hyperflow.tls-test"); err != nil {
			t.Error(err)
		}
	})
	t.Run("URL query", func(t *testing.T) {
		q := url.Values{"cacertfile": {b.ca}, "certfile": {b.cert}, "keyfile": {b.key}, "server_name_indication": {"localhost"}}
		c, err := eventbus.DialWith(b.url+"?"+q.Encode(), eventbus.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("auth_mechanism=external", func(t *testing.T) {
		u, _ := url.Parse(b.url)
		u.User = nil
		q := url.Values{"cacertfile": {b.ca}, "certfile": {b.cert}, "keyfile": {b.key}, "auth_mechanism": {"external"}}
		c, err := eventbus.DialWith(u.String()+"?"+q.Encode(), eventbus.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

// Each refusal fails at once, with an error that names the cause and the
// setting that fixes it (not a hang, not a bare EOF).
func TestTLSRefusalsNameTheCause(t *testing.T) {
	b := newTLSBroker(t)
	dir := t.TempDir()
	now := time.Now()
	// A CA made here, which signed nothing the broker has.
	otherCA, _, _, _ := writeCert(t, dir, "other-ca", true, nil, nil, now.Add(-time.Hour), now.Add(time.Hour))
	caCert, caKey := brokerCA(t, b)
	expiredCert, expiredKey, _, _ := writeCert(t, dir, "guest-expired", false, caCert, caKey, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	_, _, strangerCA, strangerKey := writeCert(t, dir, "stranger-ca", true, nil, nil, now.Add(-time.Hour), now.Add(time.Hour))
	strangerCert, strangerCertKey, _, _ := writeCert(t, dir, "guest-stranger", false, strangerCA, strangerKey, now.Add(-time.Hour), now.Add(time.Hour))

	tests := []struct {
		name string
		tls  eventbus.TLSFiles
		want string
	}{
		{"wrong CA", eventbus.TLSFiles{CAFile: otherCA, CertFile: b.cert, KeyFile: b.key}, "not signed by a trusted CA"},
		{"no client certificate", eventbus.TLSFiles{CAFile: b.ca}, "requires a client certificate"},
		{"expired client certificate", eventbus.TLSFiles{CAFile: b.ca, CertFile: expiredCert, KeyFile: expiredKey}, "expired"},
		{"client certificate of another CA", eventbus.TLSFiles{CAFile: b.ca, CertFile: strangerCert, KeyFile: strangerCertKey}, "refused the client certificate"},
		{"wrong server name", eventbus.TLSFiles{CAFile: b.ca, CertFile: b.cert, KeyFile: b.key, ServerName: "broker.example"}, "not valid for"},
		{"missing CA file", eventbus.TLSFiles{CAFile: filepath.Join(dir, "nope.pem")}, "nope.pem"},
		{"key without certificate", eventbus.TLSFiles{CAFile: b.ca, KeyFile: b.key}, "both a certificate and its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c, err := eventbus.DialWith(b.url, eventbus.DialOptions{TLS: tt.tls})
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "guest:guest") {
				t.Errorf("error shows the password: %v", err)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("took %v: a refusal must fail at once", d)
			}
		})
	}
}

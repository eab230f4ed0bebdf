package tui

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// Headless collection that never connected ends with an error that says
// why, not "wrote 0 jobs": here the broker refuses the password after its
// delay (RabbitMQ waits about 3 s), longer than --duration.
func TestHeadlessWrongPasswordFails(t *testing.T) {
	u, err := url.Parse(testenv.AMQPURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "not-the-password")
	csvPath := filepath.Join(t.TempDir(), "jobs.csv")
	cfg, err := ParseArgs([]string{"--amqp-url", u.String(), "--csv", csvPath, "--duration", "500ms"},
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = Run(t.Context(), cfg, Env{})
	if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("error %v, want the broker's refusal (403) without the password", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s", d)
	}
	if _, err := os.Stat(csvPath); err == nil {
		t.Error("a CSV was written though nothing was collected")
	}
}

// A broker that accepts the connection and never answers: at the end of
// --duration and a grace for the first attempt, an error.
func TestHeadlessNoAnswerFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	defer func(g time.Duration) { connectGrace = g }(connectGrace)
	connectGrace = 300 * time.Millisecond
	cfg, err := ParseArgs([]string{"--amqp-url", "amqp://guest:secret@" + ln.Addr().String() + "/",
		"--csv", filepath.Join(t.TempDir(), "a.csv"), "--duration", "200ms"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	err = Run(t.Context(), cfg, Env{})
	if err == nil || !strings.Contains(err.Error(), "never connected to "+ln.Addr().String()) ||
		strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v, want: never connected to %s", err, ln.Addr())
	}
}

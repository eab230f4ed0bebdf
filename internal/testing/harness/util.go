package harness

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// RabbitMQCtlVar holds the path of the private broker's rabbitmqctl
// wrapper (scripts/with-servers.sh --rabbitmq).
const RabbitMQCtlVar = "HYPERFLOW_TEST_RABBITMQCTL"

// SyncBuffer is a bytes.Buffer safe for concurrent use: a log several
// goroutines write while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor polls cond until it holds, and fails the test, saying what it
// waited for, if it does not within timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CloseConnections closes, with rabbitmqctl, every broker connection whose
// client properties contain substr (the executor's are named
// "hyperflow-executor ID"), as a network failure or a broker restart
// would. ctl is the rabbitmqctl to use; "" is the private broker's, from
// HYPERFLOW_TEST_RABBITMQCTL (the test is skipped or failed without it, as
// testenv.Require does). The test fails if no connection matches.
func CloseConnections(t testing.TB, ctl, substr string) {
	t.Helper()
	if ctl == "" {
		ctl = testenv.Require(t, RabbitMQCtlVar)
	}
	out, err := exec.Command(ctl, "list_connections", "-q", "--no-table-headers", "pid", "client_properties").CombinedOutput()
	if err != nil {
		t.Fatalf("list connections: %v: %s", err, out)
	}
	closed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, substr) {
			continue
		}
		pid, _, _ := strings.Cut(line, "\t")
		if out, err := exec.Command(ctl, "close_connection", pid, "test: simulated failure").CombinedOutput(); err != nil {
			t.Fatalf("close connection %s: %v: %s", pid, err, out)
		}
		closed++
	}
	if closed == 0 {
		t.Fatalf("no connection matching %s found:\n%s", substr, out)
	}
}

// DeleteQueue removes a test's job queue and, unless exchange is "", its
// events exchange, from the broker at url (or the first node of a
// comma-separated list that answers). It is best effort: a failure is
// logged, not fatal.
func DeleteQueue(t testing.TB, url, queue, exchange string) {
	t.Helper()
	var conn *amqp.Connection
	var err error
	for _, one := range eventbus.SplitURLs(url) {
		if conn, err = amqp.DialConfig(one, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)}); err == nil {
			break
		}
	}
	if conn == nil {
		err = errors.Join(err, errors.New("no URL answered"))
	}
	if err != nil {
		t.Logf("delete queue %s: %v", queue, err)
		return
	}
	defer conn.Close()
	// One channel each: a refusal closes the channel it happened on.
	do := func(what string, f func(ch *amqp.Channel) error) {
		ch, err := conn.Channel()
		if err == nil {
			err = f(ch)
			ch.Close()
		}
		if err != nil {
			t.Logf("delete %s: %v", what, err)
		}
	}
	do("queue "+queue, func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(queue, false, false, false)
		return err
	})
	if exchange != "" {
		do("exchange "+exchange, func(ch *amqp.Channel) error { return ch.ExchangeDelete(exchange, false, false) })
	}
}

package executor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

func TestTrackerDeduplicates(t *testing.T) {
	tr := newTracker(2)
	d := func(id string, tag uint64) amqp.Delivery { return amqp.Delivery{CorrelationId: id, DeliveryTag: tag} }
	if v := tr.admit(d("a", 1)); v != runIt {
		t.Fatalf("first delivery: %v", v)
	}
	if v := tr.admit(d("a", 2)); v != attached {
		t.Fatalf("redelivery while running: %v", v)
	}
	if extra := tr.finish("a", true); len(extra) != 1 || extra[0].DeliveryTag != 2 {
		t.Fatalf("attached deliveries = %+v", extra)
	}
	if v := tr.admit(d("a", 3)); v != answered {
		t.Fatalf("redelivery after reply: %v", v)
	}
	// Not answered (killed by shutdown): runs again.
	tr.admit(d("b", 4))
	tr.finish("b", false)
	if v := tr.admit(d("b", 5)); v != runIt {
		t.Fatalf("redelivery of an unanswered job: %v", v)
	}
	tr.finish("b", true)
	// Bounded: the oldest answered id is forgotten.
	tr.admit(d("c", 6))
	tr.finish("c", true)
	if len(tr.finished) != 2 {
		t.Errorf("remembers %d finished jobs, want at most 2", len(tr.finished))
	}
	if v := tr.admit(d("a", 7)); v != runIt {
		t.Errorf("forgotten id: %v, want runIt", v)
	}
	// No correlation id: never tracked.
	if v := tr.admit(d("", 8)); v != runIt || tr.admit(d("", 9)) != runIt {
		t.Error("deliveries without correlation id must always run")
	}
}

func TestOversizedMessageRefused(t *testing.T) {
	b := setup(t, func(c *config.Settings) { c.MaxMessageSize = 100 })
	body := mustJSON(t, map[string]any{"executable": "/bin/true", "args": []any{strings.Repeat("x", 200)}})
	res := b.deliver(t, body)
	if res.reply.ExitStatus != -2 || !strings.Contains(res.reply.Exceptions[0], "max_message_size") {
		t.Errorf("reply = %+v", res.reply)
	}
	if len(res.settled) != 1 || res.settled[0] != "reject" {
		t.Errorf("settled %v, want [reject]", res.settled)
	}
}

func TestJobEnvironmentHidesSecrets(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
	t.Setenv("AMQP_URL", "amqp://u:pw-secret@h/")
	t.Setenv("VISIBLE_TO_JOBS", "yes")
	b := setup(t, nil)
	res := b.deliver(t, mustJSON(t, map[string]any{"executable": "/usr/bin/env", "env": map[string]any{"JOB_VAR": 7},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}}))
	out := res.reply.Stdout
	if strings.Contains(out, "very-secret") || strings.Contains(out, "pw-secret") {
		t.Errorf("secrets reached the job:\n%s", out)
	}
	if !strings.Contains(out, "VISIBLE_TO_JOBS=yes") || !strings.Contains(out, "JOB_VAR=7") {
		t.Errorf("job environment lacks inherited or job variables:\n%s", out)
	}
}

func TestStaleWorkdirsSwept(t *testing.T) {
	b := setup(t, nil)
	root := b.tmp
	// A finished process stands for a crashed executor.
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.ProcessState.Pid()
	os.WriteFile(filepath.Join(root, pidPrefix+"deadbeef.pid"), []byte(strconv.Itoa(deadPID)), 0o600)
	stale := filepath.Join(root, jobPrefix+"deadbeef-123")
	os.MkdirAll(filepath.Join(stale, "sub"), 0o700)
	// A live executor's directory stays.
	os.WriteFile(filepath.Join(root, pidPrefix+"0livexec.pid"), []byte(fmt.Sprint(os.Getpid())), 0o600)
	live := filepath.Join(root, jobPrefix+"0livexec-456")
	os.Mkdir(live, 0o700)

	release := b.ex.claimTmpDir()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale work directory still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live executor's directory removed: %v", err)
	}
	own := filepath.Join(root, pidPrefix+b.ex.ID()[:8]+".pid")
	if _, err := os.Stat(own); err != nil {
		t.Errorf("own pid file missing: %v", err)
	}
	release()
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Error("own pid file left after release")
	}
}

func TestWorkdirIsPrivate(t *testing.T) {
	b := setup(t, nil)
	dir, err := b.ex.newWorkdir()
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("work directory mode %v, want 0700", fi.Mode().Perm())
	}
}

package testenv

import (
	"fmt"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		value, require string
		want           action
		msgHas         string
	}{
		{"amqp://x/", "", actionUse, ""},
		{"amqp://x/", "1", actionUse, ""},
		{"", "", actionSkip, "make test"},
		{"   ", "", actionSkip, "make test"},
		{"", "0", actionSkip, "make test"},
		{"", "false", actionSkip, "make test"},
		{"", "garbage", actionSkip, "make test"},
		{"", "1", actionFail, RequireVar + "=1"},
		{"", "true", actionFail, "make test"},
		{"", " 1 ", actionFail, "not set"},
	} {
		got, msg := decide(tc.value, tc.require)
		if got != tc.want {
			t.Errorf("decide(%q, %q) = %v, want %v", tc.value, tc.require, got, tc.want)
		}
		if tc.want == actionUse && msg != "" {
			t.Errorf("decide(%q, %q): message %q for actionUse, want none", tc.value, tc.require, msg)
		}
		if !strings.Contains(msg, tc.msgHas) {
			t.Errorf("decide(%q, %q): message %q lacks %q", tc.value, tc.require, msg, tc.msgHas)
		}
	}
}

// recorder is a testing.TB that records Skip/Fatal instead of acting on them
// beyond stopping the calling goroutine, like the real ones do.
type recorder struct {
	testing.TB // nil: only the methods below may be called
	skipped    string
	failed     string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	panic(stop{})
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(stop{})
}

type stop struct{}

// call runs Require on a recorder, catching the stop that Skip/Fatal cause.
func call(name string) (r *recorder, value string) {
	r = &recorder{}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(stop); !ok {
					panic(p)
				}
			}
		}()
		value = Require(r, name)
	}()
	return r, value
}

func TestRequireWiring(t *testing.T) {
	const name = "HYPERFLOW_TEST_TESTENV_DUMMY"

	t.Setenv(name, " amqp://u@127.0.0.1:1/ ")
	t.Setenv(RequireVar, "1")
	if r, v := call(name); v != "amqp://u@127.0.0.1:1/" || r.skipped != "" || r.failed != "" {
		t.Errorf("set: got %q skipped=%q failed=%q", v, r.skipped, r.failed)
	}

	t.Setenv(name, "")
	if r, _ := call(name); !strings.HasPrefix(r.failed, name+" ") || r.skipped != "" {
		t.Errorf("unset+required: skipped=%q failed=%q, want a failure naming %s", r.skipped, r.failed, name)
	}

	t.Setenv(RequireVar, "")
	if r, _ := call(name); !strings.HasPrefix(r.skipped, name+" ") || r.failed != "" {
		t.Errorf("unset: skipped=%q failed=%q, want a skip naming %s", r.skipped, r.failed, name)
	}
}

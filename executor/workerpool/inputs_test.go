package workerpool

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRewriteInputArgs(t *testing.T) {
	inputs := []Signal{{Name: "in.fits", WorkflowInput: true}, {Name: "mid.fits"}}
	args := []string{"-x", "in.fits", "mid.fits", "in.fits.bak"}
	got := rewriteInputArgs(args, inputs, "/data/in")
	if want := []string{"-x", "/data/in/in.fits", "mid.fits", "in.fits.bak"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rewritten %q, want %q", got, want)
	}
	if args[1] != "in.fits" {
		t.Error("args modified in place")
	}
	if got := rewriteInputArgs(args, inputs, ""); !reflect.DeepEqual(got, args) {
		t.Errorf("without input dir: %q", got)
	}
	if got := inputPath("/w", "/in", Signal{Name: "a", WorkflowInput: true}); got != "/in/a" {
		t.Errorf("inputPath = %q", got)
	}
	if got := outputPath("/w", "out", Signal{Name: "b", WorkflowOutput: true}); got != "/w/out/b" {
		t.Errorf("outputPath = %q", got)
	}
}

func TestWaitForInputs(t *testing.T) {
	dir := t.TempDir()
	noPause := func(int) time.Duration { return time.Millisecond }
	os.WriteFile(filepath.Join(dir, "a"), []byte("abc"), 0o644)
	ctx := context.Background()

	if err := waitForInputs(ctx, dir, "", []Signal{{Name: "a", Size: 3}}, 0, noPause); err != nil {
		t.Errorf("present file: %v", err)
	}
	err := waitForInputs(ctx, dir, "", []Signal{{Name: "a", Size: 4}, {Name: "b"}}, 2, noPause)
	if err == nil || !strings.Contains(err.Error(), "input files missing after 3 checks: "+filepath.Join(dir, "a")+", "+filepath.Join(dir, "b")) {
		t.Errorf("missing files: %v", err)
	}
	// A file that appears during the wait.
	calls := 0
	appear := func(n int) time.Duration {
		calls++
		if n == 2 {
			os.WriteFile(filepath.Join(dir, "late"), nil, 0o644)
		}
		return time.Millisecond
	}
	if err := waitForInputs(ctx, dir, "", []Signal{{Name: "late"}}, 10, appear); err != nil || calls != 2 {
		t.Errorf("late file: %v after %d pauses", err, calls)
	}
	if d := waitDelay(3); d != time.Second+8*time.Millisecond {
		t.Errorf("waitDelay(3) = %v", d)
	}
}

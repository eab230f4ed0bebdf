package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
)

func TestParseArgs(t *testing.T) {
	env := func(url string) func(string) string {
		return func(k string) string {
			if k == "AMQP_URL" {
				return url
			}
			return ""
		}
	}
	cases := []struct {
		name    string
		args    []string
		url     string
		check   func(c Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.AMQPURL == DefaultAMQPURL && c.Exchange == "hyperflow.events" && len(c.Bindings) == 1 &&
				c.Bindings[0] == "#" && c.MaxJobs == 10000 && c.Speed == 1 && c.Window == DefaultWindow
		}},
		{name: "AMQP_URL", url: "amqp://u:p@127.0.0.1:5673/", check: func(c Config) bool { return c.AMQPURL == "amqp://u:p@127.0.0.1:5673/" }},
		{name: "flag over AMQP_URL", url: "amqp://env/", args: []string{"--amqp-url", "amqp://flag/"}, check: func(c Config) bool { return c.AMQPURL == "amqp://flag/" }},
		{name: "bindings", args: []string{"--binding", "job.*.finished", "--binding", "executor.#"}, check: func(c Config) bool {
			return strings.Join(c.Bindings, ",") == "job.*.finished,executor.#"
		}},
		{name: "all", args: []string{"--exchange", "x", "--max-jobs", "50", "--csv", "a.csv", "--duration", "1m", "--record", "r.jsonl", "--window", "5m"},
			check: func(c Config) bool {
				return c.Exchange == "x" && c.MaxJobs == 50 && c.CSV == "a.csv" && c.Duration == time.Minute && c.Record == "r.jsonl" && c.Window == 5*time.Minute
			}},
		{name: "replay", args: []string{"--replay", "r.jsonl", "--speed", "0"}, check: func(c Config) bool { return c.Replay == "r.jsonl" && c.Speed == 0 }},
		{name: "url order", args: []string{"--amqp-url-order", "ordered"}, check: func(c Config) bool { return c.Order == "ordered" }},
		{name: "url order default", check: func(c Config) bool { return c.Order == "shuffle" }},
		{name: "bad url order", args: []string{"--amqp-url-order", "random"}, wantErr: `--amqp-url-order: must be shuffle or ordered, got "random"`},
		{name: "help", args: []string{"-h"}, wantErr: pflag.ErrHelp.Error()},
		{name: "argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "max-jobs", args: []string{"--max-jobs", "0"}, wantErr: "--max-jobs 0"},
		{name: "speed", args: []string{"--replay", "r", "--speed", "-1"}, wantErr: "--speed -1"},
		{name: "speed without replay", args: []string{"--speed", "2"}, wantErr: "only with --replay"},
		{name: "window", args: []string{"--window", "1h"}, wantErr: "--window 1h0m0s"},
		{name: "duration", args: []string{"--duration", "-1s"}, wantErr: "--duration -1s"},
		{name: "empty binding", args: []string{"--binding", ""}, wantErr: "--binding"},
		{name: "same file", args: []string{"--replay", "r", "--record", "r"}, wantErr: "the same file"},
		{name: "empty exchange", args: []string{"--exchange", ""}, wantErr: "--exchange"},
		{name: "traces", args: []string{"--trace", "t.tsv", "--chrome-trace", "c.json"}, check: func(c Config) bool {
			return c.Trace == "t.tsv" && c.ChromeTrace == "c.json" && c.CSV == "" && c.Headless()
		}},
		{name: "not headless", check: func(c Config) bool { return !c.Headless() && c.StallAfter == 30*time.Second }},
		{name: "resume", args: []string{"--resume", "r.jsonl", "--csv", "a.csv"}, check: func(c Config) bool { return c.Resume == "r.jsonl" }},
		{name: "resume and record", args: []string{"--resume", "r.jsonl", "--record", "s.jsonl"}, wantErr: "--resume: not with --record or --replay"},
		{name: "resume and replay", args: []string{"--resume", "r.jsonl", "--replay", "s.jsonl"}, wantErr: "--resume: not with"},
		{name: "same output", args: []string{"--csv", "a", "--trace", "a"}, wantErr: "--csv and --trace: the same file"},
		{name: "output over the recording", args: []string{"--resume", "r", "--chrome-trace", "r"}, wantErr: "--resume and --chrome-trace: the same file"},
		{name: "stall-after", args: []string{"--stall-after", "5s"}, check: func(c Config) bool { return c.StallAfter == 5*time.Second }},
		{name: "stall-after 0", args: []string{"--stall-after", "0s"}, wantErr: "--stall-after 0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseArgs(tc.args, env(tc.url))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var b bytes.Buffer
	WriteUsage(&b)
	for _, flag := range []string{"--amqp-url", "--exchange", "--binding", "--max-jobs", "--csv", "--duration", "--record", "--replay", "--speed", "--window", "NO_COLOR", "AMQP_URL",
		"--trace", "--chrome-trace", "--resume", "--stall-after", "5 failures", ".tsv", ".json"} {
		if !strings.Contains(b.String(), flag) {
			t.Errorf("usage lacks %s", flag)
		}
	}
}

func TestRunWithoutTerminal(t *testing.T) {
	cfg, _ := ParseArgs(nil, func(string) string { return "" })
	err := Run(t.Context(), cfg, Env{Terminal: false})
	if !errors.Is(err, ErrNoTerminal) {
		t.Fatalf("error %v, want ErrNoTerminal", err)
	}
	if !strings.Contains(err.Error(), "--csv FILE") {
		t.Errorf("the error does not say what to do: %v", err)
	}
}

func readJobsCSV(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jobs, err := export.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	return len(jobs)
}

func TestHeadlessReplay(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ParseArgs([]string{"--replay", "testdata/demo.jsonl", "--speed", "0", "--csv", filepath.Join(dir, "jobs.csv"),
		"--record", filepath.Join(dir, "again.jsonl")}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := Run(t.Context(), cfg, Env{Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if n := readJobsCSV(t, cfg.CSV); n != demoJobs {
		t.Errorf("%d jobs in the CSV, want %d", n, demoJobs)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("wrote %d jobs to %s (%d events received)", demoJobs, cfg.CSV, demoEvents)) ||
		!strings.Contains(stderr.String(), fmt.Sprintf("recorded %d events to %s", demoEvents, cfg.Record)) {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	// Recording a replay gives the recording back.
	a, _ := os.ReadFile("testdata/demo.jsonl")
	b, _ := os.ReadFile(cfg.Record)
	if !bytes.Equal(a, b) {
		t.Error("the recording of the replay differs from the recording played")
	}
}

func TestHeadlessDurationAndSignal(t *testing.T) {
	dir := t.TempDir()
	// Played 20 times faster, the recording lasts 9 s: --duration ends it,
	// and the jobs so far are written.
	cfg, _ := ParseArgs([]string{"--replay", "testdata/demo.jsonl", "--speed", "20", "--csv", filepath.Join(dir, "a.csv"), "--duration", "300ms"},
		func(string) string { return "" })
	start := time.Now()
	if err := Run(t.Context(), cfg, Env{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("--duration 300ms took %s", d)
	}
	if n := readJobsCSV(t, cfg.CSV); n == 0 || n >= demoJobs {
		t.Errorf("%d jobs after 300 ms of a replay at x20", n)
	}
	// Cancelling (SIGINT in main) writes the CSV as well.
	cfg.CSV, cfg.Duration = filepath.Join(dir, "b.csv"), 0
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := Run(ctx, cfg, Env{}); err != nil {
		t.Fatal(err)
	}
	if n := readJobsCSV(t, cfg.CSV); n == 0 {
		t.Error("no job written on cancel")
	}
}

func TestHeadlessBrokerDown(t *testing.T) {
	// Nothing listens on port 1 of loopback: the first connection fails
	// at once, and headless collection gives up with the reason.
	cfg, _ := ParseArgs([]string{"--amqp-url", "amqp://guest:secret@127.0.0.1:1/", "--csv", filepath.Join(t.TempDir(), "a.csv")},
		func(string) string { return "" })
	err := Run(t.Context(), cfg, Env{})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v, want the broker's address without the password", err)
	}
}

func TestAMQPSourceRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	src := StartAMQP(ctx, AMQPSource{URL: "amqp://guest:guest@127.0.0.1:1/", Exchange: "x"}, nil, nil)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-src.Notices:
			if n.State != ConnDown {
				continue
			}
			if !strings.Contains(n.Text, "retrying in ") || !strings.Contains(n.Text, "127.0.0.1:1") {
				t.Errorf("notice %q", n.Text)
			}
			cancel()
			if err := src.Wait(); err != nil {
				t.Errorf("Wait: %v", err)
			}
			if _, ok := <-src.Events; ok {
				t.Error("events not closed")
			}
			return
		case <-deadline:
			t.Fatal("no notice of the failed connection")
		}
	}
}

func TestReplaySourceErrors(t *testing.T) {
	if _, err := StartReplay(t.Context(), filepath.Join(t.TempDir(), "none"), 1, nil); err == nil {
		t.Error("no error for a missing recording")
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("{\"t\":\"2024-05-01T10:00:00Z\",\"key\":\"k\",\"body\":{}}\nnot json\n{}\n"), 0o644)
	src, err := StartReplay(t.Context(), bad, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range src.Events {
	}
	if err := src.Wait(); err == nil || !errors.Is(err, record.ErrBadLine) {
		t.Errorf("Wait: %v, want a bad line", err)
	}
}

// TestReplay plays the demo recording into the UI, as fast as possible,
// and checks that the model ends where loading the recording directly
// gets.
func TestReplay(t *testing.T) {
	src, err := StartReplay(t.Context(), "testdata/demo.jsonl", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{Source: src, Location: time.UTC})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte(fmt.Sprintf("finished: %d events", demoEvents)))
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	got := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if err := src.Wait(); err != nil {
		t.Fatal(err)
	}
	want := loadDemo(t).Totals(demoNow)
	gt := got.State().Totals(demoNow)
	if gt.Events != demoEvents || gt.Done != want.Done || gt.Failed != want.Failed || gt.Running != want.Running ||
		gt.Redelivered != want.Redelivered || gt.Executors != want.Executors {
		t.Errorf("after the replay: %+v\nwant %+v", gt, want)
	}
	if !got.sourceEnded {
		t.Error("the model did not see the end of the replay")
	}
	// The replay's clock is its latest event.
	if now := got.c.now(); !now.Equal(got.State().Latest()) || now.Before(demoNow.Add(-time.Second)) {
		t.Errorf("replay clock %s, want the last event's receive time %s", now, got.State().Latest())
	}
}

func TestReplayPacedRecording(t *testing.T) {
	// At speed 1000 the 3 minutes play in about 0.2 s; recording them
	// while the UI runs keeps every event.
	dir := t.TempDir()
	rec, err := record.Create(filepath.Join(dir, "r.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	src, err := StartReplay(t.Context(), "testdata/demo.jsonl", 1000, rec)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range src.Events {
		n++
	}
	if err := src.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 10*time.Second {
		t.Errorf("speed 1000 played 180 s in %s", d)
	}
	if n != demoEvents || src.Count() != demoEvents {
		t.Errorf("%d events (count %d), want %d", n, src.Count(), demoEvents)
	}
	f, _ := os.Open(filepath.Join(dir, "r.jsonl"))
	defer f.Close()
	msgs, err := record.Load(f)
	if err != nil || len(msgs) != demoEvents {
		t.Errorf("recorded %d events, err %v", len(msgs), err)
	}
	_, _ = io.Copy(io.Discard, f)
}

// The source's name in the header: the broker's host:port, each node's for
// a cluster's list, never a password.
func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://u:secret@rmq-1:5672/hf":                                 "rmq-1:5672/hf",
		"amqp://127.0.0.1:1/":                                           "127.0.0.1:1",
		"amqp://u:secret@rmq-1:5672/, amqp://u:secret@rmq-2:5672/":      "rmq-1:5672,rmq-2:5672",
		"amqps://u:secret@rmq-1:5671/hf,amqps://u:secret@rmq-2:5671/hf": "rmq-1:5671/hf,rmq-2:5671/hf",
	} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

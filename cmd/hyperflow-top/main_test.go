package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
)

func noEnv(string) string { return "" }

func TestRun(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "jobs.csv")
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErr    string
		wantNotErr string
	}{
		{name: "help", args: []string{"--help"}, wantCode: exitOK, wantOut: "usage: hyperflow-top"},
		{name: "version", args: []string{"--version"}, wantCode: exitOK, wantOut: "hyperflow-top dev"},
		{name: "bad flag", args: []string{"--nope"}, wantCode: exitUsage,
			wantErr: "hyperflow-top: unknown flag: --nope\nsee hyperflow-top --help\n", wantNotErr: "usage:"},
		{name: "speed without replay", args: []string{"--speed", "2"}, wantCode: exitUsage, wantErr: "--speed: only with --replay"},
		{
			// go test's standard input and output are not a terminal.
			name: "no terminal", args: nil, wantCode: exitUsage,
			wantErr: "not a terminal: the live view needs one (run it in a terminal, or collect without one: hyperflow-top --csv FILE",
		},
		{
			name: "headless replay", args: []string{"--replay", "../../tui/testdata/demo.jsonl", "--speed", "0", "--csv", csvPath},
			wantCode: exitOK, wantErr: "wrote 160 jobs to " + csvPath,
		},
		{
			name: "headless traces", args: []string{"--replay", "../../tui/testdata/demo.jsonl", "--speed", "0",
				"--trace", filepath.Join(dir, "t.tsv"), "--chrome-trace", filepath.Join(dir, "c.json")},
			wantCode: exitOK, wantErr: "wrote 160 jobs to " + filepath.Join(dir, "c.json") + " (Chrome trace",
		},
		{name: "resume and record", args: []string{"--resume", "a.jsonl", "--record", "b.jsonl"}, wantCode: exitUsage,
			wantErr: "--resume: not with --record or --replay"},
		{
			name: "missing recording", args: []string{"--replay", filepath.Join(dir, "none.jsonl"), "--csv", csvPath},
			wantCode: exitFailure, wantErr: "open recording",
		},
		{
			name: "csv in a missing directory", args: []string{"--replay", "../../tui/testdata/demo.jsonl", "--csv", filepath.Join(dir, "no", "jobs.csv")},
			wantCode: exitFailure, wantErr: "--csv " + filepath.Join(dir, "no", "jobs.csv"),
			wantNotErr: ".jobs.csv.", // the temporary file
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr, noEnv)
			if code != tc.wantCode {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tc.wantOut)
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.wantErr)
			}
			if tc.wantNotErr != "" && strings.Contains(stderr.String(), tc.wantNotErr) {
				t.Errorf("stderr %q contains %q", stderr.String(), tc.wantNotErr)
			}
		})
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jobs, err := export.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 160 {
		t.Errorf("CSV has %d jobs, want 160", len(jobs))
	}
}

package workerpool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// inputPath is where a task finds an input: under the input directory when
// the signal is a workflow input and one is set, else in the work
// directory (dir), as the listener resolves it.
func inputPath(dir, inputDir string, s Signal) string {
	if inputDir != "" && s.WorkflowInput {
		return absIn(dir, filepath.Join(inputDir, s.Name))
	}
	return absIn(dir, s.Name)
}

// outputPath is inputPath for outputs and the output directory.
func outputPath(dir, outputDir string, s Signal) string {
	if outputDir != "" && s.WorkflowOutput {
		return absIn(dir, filepath.Join(outputDir, s.Name))
	}
	return absIn(dir, s.Name)
}

// absIn resolves name against dir unless it is absolute.
func absIn(dir, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name)
}

// rewriteInputArgs replaces every argument equal to the name of a workflow
// input by its path in inputDir, as the listener does when HF_VAR_INPUT_DIR
// is set (addDirToCommand). args is not modified.
func rewriteInputArgs(args []string, inputs []Signal, inputDir string) []string {
	if inputDir == "" {
		return args
	}
	out := append([]string(nil), args...)
	for _, in := range inputs {
		if !in.WorkflowInput {
			continue
		}
		for i, a := range out {
			if a == in.Name {
				out[i] = filepath.Join(inputDir, a)
			}
		}
	}
	return out
}

// waitDelay is the pause after the n-th check of the input files (n from
// 1): 2^n ms + 1 s, as in the listener.
func waitDelay(n int) time.Duration {
	return time.Duration(1<<min(n, 20))*time.Millisecond + time.Second
}

// waitForInputs checks that every input file exists (with its size, when
// the signal gives one), checking up to retries+1 times with waitDelay
// between the checks, as HF_VAR_WAIT_FOR_INPUT_FILES does (every input
// signal names a file, as for the listener: workflow inputs carry data
// too). The error names the files still missing.
func waitForInputs(ctx context.Context, dir, inputDir string, inputs []Signal, retries int, delay func(int) time.Duration) error {
	var missing []string
	for _, in := range inputs {
		missing = append(missing, inputPath(dir, inputDir, in))
	}
	sizes := map[string]int64{}
	for _, in := range inputs {
		if in.Size > 0 {
			sizes[inputPath(dir, inputDir, in)] = in.Size
		}
	}
	for check := 1; ; check++ {
		left := missing[:0:0]
		for _, p := range missing {
			fi, err := os.Stat(p)
			if err != nil || fi.IsDir() || (sizes[p] > 0 && fi.Size() != sizes[p]) {
				left = append(left, p)
			}
		}
		missing = left
		if len(missing) == 0 {
			return nil
		}
		if check > retries {
			return fmt.Errorf("input files missing after %d checks: %s", check, strings.Join(missing, ", "))
		}
		t := time.NewTimer(delay(check))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for input files %s: %w", strings.Join(missing, ", "), ctx.Err())
		}
	}
}

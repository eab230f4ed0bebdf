package submit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Runner runs hyperflow-submit with its settings and standard streams.
type Runner struct {
	Opts   Options
	Stdin  io.Reader // a job given as "-"
	Stdout io.Writer // the reply (single mode), the summary (load mode)
	Stderr io.Writer // the exceptions of the reply, the text summary with --json
	Log    *slog.Logger
}

// Run sends the job (or the load) and waits for the replies. It returns the
// exit code of the command (see the package documentation) and, for every
// code that is not the job's own, an error saying what went wrong.
func (r *Runner) Run(ctx context.Context) (int, error) {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	body, err := r.jobBody()
	if err != nil {
		return ExitFailure, err
	}
	if r.Opts.Count > 0 {
		return r.runLoad(ctx, body)
	}
	return r.runSingle(ctx, body)
}

func (r *Runner) jobBody() ([]byte, error) {
	if r.Opts.JobFile != "" {
		return LoadJob(r.Opts.JobFile, r.Stdin)
	}
	return BuildJob(r.Opts.Job)
}

func (r *Runner) runSingle(ctx context.Context, body []byte) (int, error) {
	s, err := openSession(r.Opts, false, r.Log)
	if err != nil {
		return ExitFailure, err
	}
	defer s.close()
	id := uuid.NewString()
	if err := s.publish(ctx, id, body); err != nil {
		return ExitFailure, err
	}
	r.Log.Debug("job published", "id", id, "queue", r.Opts.Queue, "reply_to", s.replyTo)

	var timeout <-chan time.Time
	if r.Opts.ReplyTimeout > 0 {
		t := time.NewTimer(r.Opts.ReplyTimeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ExitInterrupted, fmt.Errorf("interrupted while waiting for the reply to job %s", id)
		case <-timeout:
			return ExitTimedOut, fmt.Errorf("no reply to job %s within %v", id, r.Opts.ReplyTimeout)
		case d, ok := <-s.replies:
			if !ok {
				return ExitFailure, fmt.Errorf("waiting for the reply to job %s: %w", id, s.lost())
			}
			if d.CorrelationId != id {
				// The engine ignores such messages too.
				r.Log.Warn("reply with an unknown correlation id ignored", "correlation_id", d.CorrelationId)
				continue
			}
			return r.report(id, d.Body)
		}
	}
}

// report prints a single job's reply and maps its exit status.
func (r *Runner) report(id string, body []byte) (int, error) {
	rep, checkErr := CheckReply(body)
	if !r.Opts.Quiet {
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") != nil {
			out.Reset()
			out.Write(body)
		}
		out.WriteByte('\n')
		if _, err := r.Stdout.Write(out.Bytes()); err != nil {
			return ExitFailure, fmt.Errorf("write reply: %w", err)
		}
	}
	if !rep.HasStatus {
		return ExitFailure, fmt.Errorf("reply to job %s: %w", id, checkErr)
	}
	for _, e := range rep.Exceptions {
		fmt.Fprintln(r.Stderr, e)
	}
	if checkErr != nil {
		r.Log.Warn("reply does not follow the wire contract", "id", id, "err", checkErr)
	}
	code := ExitCode(rep.ExitStatus)
	if code == ExitFailure && rep.ExitStatus != -2 {
		r.Log.Warn("exit_status outside the wire contract", "id", id, "exit_status", rep.ExitStatus)
	}
	return code, nil
}

func (r *Runner) runLoad(ctx context.Context, body []byte) (int, error) {
	s, err := openSession(r.Opts, true, r.Log)
	if err != nil {
		return ExitFailure, err
	}
	defer s.close()
	r.Log.Debug("load run", "jobs", r.Opts.Count, "inflight", r.Opts.Inflight, "queue", r.Opts.Queue, "reply_to", s.replyTo)

	sum, runErr := runLoad(ctx, s, body, r.Opts)
	if err := r.printSummary(sum); err != nil && runErr == nil {
		runErr = err
	}
	switch {
	case runErr != nil:
		return ExitFailure, runErr
	case ctx.Err() != nil:
		return ExitInterrupted, errors.New("interrupted")
	case !sum.OK:
		return ExitLoadProblem, fmt.Errorf("load run failed: %d published of %d, %d missing, %d malformed, %d duplicates, %d late, %d unknown",
			sum.Published, sum.Jobs, sum.Missing, sum.Malformed, sum.Duplicates, sum.Late, sum.Unknown)
	}
	return ExitOK, nil
}

func (r *Runner) printSummary(sum Summary) error {
	text := r.Stdout
	if r.Opts.JSON {
		if err := sum.WriteJSON(r.Stdout); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
		text = r.Stderr
	}
	if r.Opts.Quiet {
		return nil
	}
	if err := sum.WriteText(text); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

package workerpool

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// trace is a task's trace file, <log dir>/task-<id>@<handler>.log, written
// with the lines and in the layout of the Node listener's log4js file
// ("[2026-12-05T12:42:41.576] [INFO] hftrace - job started: split"), so
// that HyperFlow's log tools read both alike. Only the lines about the task
// itself are written; the listener's periodic process probes (IO, NetDev,
// Procusage, Sysinfo) are not: the pool reports resource use in its events.
// A nil trace writes nothing.
type trace struct{ s *sink }

// openTrace opens (appends to) the task's trace file; a file that cannot
// be opened is logged and the task runs without it.
func (p *Pool) openTrace(id TaskID) *trace {
	s, err := openSink(logFileBase(p.logDir, id, p.handler)+".log", true)
	if err != nil {
		p.log.Warn("task trace file", "task", id, "err", err)
		return nil
	}
	return &trace{s: s}
}

func (tr *trace) line(level, format string, args ...any) {
	if tr == nil {
		return
	}
	fmt.Fprintf(tr.s, "[%s] [%s] hftrace - %s\n", time.Now().Format("2006-01-02T15:04:05.000"), level,
		fmt.Sprintf(format, args...))
}

func (tr *trace) info(format string, args ...any) { tr.line("INFO", format, args...) }
func (tr *trace) warn(format string, args ...any) { tr.line("WARN", format, args...) }

func (tr *trace) close() error {
	if tr == nil {
		return nil
	}
	return tr.s.Close()
}

// start writes the lines the listener writes when a task is taken.
func (tr *trace) start(environ []string, handler string) {
	tr.info("Environment variables (HF_LOG): %s", mustJSON(hfLogEnv(environ)))
	tr.info("handler started, (ID: %s)", handler)
}

// hfLogEnv returns the HF_LOG_* variables as the listener's read-env gives
// them: the rest of the name in camel case (HF_LOG_NODE_NAME: nodeName).
func hfLogEnv(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		rest, isLog := strings.CutPrefix(name, "HF_LOG_")
		if !ok || !isLog || rest == "" {
			continue
		}
		words := strings.Split(strings.ToLower(rest), "_")
		for i := 1; i < len(words); i++ {
			if words[i] != "" {
				words[i] = strings.ToUpper(words[i][:1]) + words[i][1:]
			}
		}
		out[strings.Join(words, "")] = value
	}
	return out
}

// commandLine is how the listener shows a command: the words joined.
func commandLine(job *JobMessage) string {
	return strings.Join(append([]string{job.Executable}, job.Args...), " ")
}

// fileSizes is the listener's "Job inputs"/"Job outputs" list: each
// signal's name with the size of its file, -1 when there is none.
func fileSizes(sigs []Signal, path func(Signal) string) string {
	list := make([]map[string]int64, 0, len(sigs))
	for _, s := range sigs {
		size := int64(-1)
		if fi, err := os.Stat(path(s)); err == nil {
			size = fi.Size()
		}
		list = append(list, map[string]int64{s.Name: size})
	}
	return mustJSON(list)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return string(b)
}

package tui

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// Format is a file format the jobs are exported in.
type Format int

// Export formats.
const (
	// FormatCSV: one row per job (package export's CSV columns).
	FormatCSV Format = iota
	// FormatNextflow: a Nextflow trace file (tab-separated).
	FormatNextflow
	// FormatChrome: the jobs' stages on the thread lanes as Chrome
	// trace-event JSON (Perfetto, chrome://tracing).
	FormatChrome
)

// formatExts are the file name extensions of each format, the first the
// one the prompt suggests.
var formatExts = [...][]string{
	FormatCSV:      {".csv"},
	FormatNextflow: {".tsv", ".trace", ".txt"},
	FormatChrome:   {".json"},
}

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatNextflow:
		return "Nextflow trace"
	case FormatChrome:
		return "Chrome trace"
	}
	return "CSV"
}

// FormatOf picks the format of path by its extension (case-insensitive):
// .csv CSV, .tsv, .trace or .txt Nextflow trace, .json Chrome trace.
func FormatOf(path string) (Format, error) {
	ext := strings.ToLower(filepath.Ext(path))
	for f, exts := range formatExts {
		for _, e := range exts {
			if ext == e {
				return Format(f), nil
			}
		}
	}
	return 0, fmt.Errorf("%s: unknown export format %q: name the file .csv (CSV), .tsv or .trace (Nextflow trace) or .json (Chrome trace)", path, ext)
}

// withFormat gives path the extension of format f (replacing the one of
// another format, else appending it).
func withFormat(path string, f Format) string {
	if cur, err := FormatOf(path); err == nil {
		if cur == f {
			return path
		}
		path = strings.TrimSuffix(path, filepath.Ext(path))
	}
	return path + formatExts[f][0]
}

// exportPrompt asks where to write the jobs table; the file name's
// extension picks the format.
type exportPrompt struct {
	active bool
	input  textinput.Model
	// err is why the name was refused, shown until the next key.
	err string
}

// exportedMsg reports a finished export.
type exportedMsg struct {
	path   string
	n      int
	format Format
	err    error
	// of is the jobs in memory and filter the filters that selected the
	// n ("" for none: the whole table).
	of     int
	filter string
	paused bool // the table as shown when the display was paused
}

func newExportPrompt() exportPrompt {
	ti := textinput.New()
	ti.Prompt = "export (.csv/.tsv/.json): "
	ti.CharLimit = 4096
	st := ti.Styles()
	st.Cursor.Blink = false
	ti.SetStyles(st)
	return exportPrompt{input: ti}
}

// defaultExportName is the prompt's suggestion: the time in the name, so
// that exports do not overwrite each other.
func (m *Model) defaultExportName() string {
	name := "hyperflow-top-" + m.c.now().In(m.c.loc).Format("20060102-150405") + ".csv"
	if m.opts.ExportDir != "" {
		return filepath.Join(m.opts.ExportDir, name)
	}
	return name
}

// startExport opens the prompt with the default file name.
func (m *Model) startExport() tea.Cmd {
	m.export.active = true
	m.export.input.SetValue(m.defaultExportName())
	m.export.input.CursorEnd()
	return m.export.input.Focus()
}

// updateExport handles the keys of the prompt: enter writes the jobs table
// (its filter and order, or while paused its snapshot) in the format of
// the file name's extension, in the background; tab switches the
// extension to the next format; esc cancels.
func (m *Model) updateExport(msg tea.Msg) tea.Cmd {
	m.export.err = ""
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch k.String() {
		case "esc":
			m.export.active = false
			m.export.input.Blur()
			m.setStatus("export cancelled", false)
			return nil
		case "tab":
			path := m.export.input.Value()
			next := FormatCSV
			if f, err := FormatOf(path); err == nil {
				next = (f + 1) % Format(len(formatExts))
			}
			m.export.input.SetValue(withFormat(path, next))
			m.export.input.CursorEnd()
			return nil
		case "enter":
			path := strings.TrimSpace(m.export.input.Value())
			if path == "" {
				m.export.active = false
				m.export.input.Blur()
				m.setStatus("export cancelled: no file name", true)
				return nil
			}
			format, err := FormatOf(path)
			if err != nil {
				// The prompt stays open to fix the name.
				m.export.err = "unknown export format: .csv, .tsv or .json"
				return nil
			}
			m.export.active = false
			m.export.input.Blur()
			jobs, frozen := m.jobs.Snapshot()
			if frozen {
				jobs = append([]state.JobView(nil), jobs...)
			} else {
				jobs, _ = m.c.st.Jobs(m.jobs.Query(), 0, -1)
			}
			filter := m.jobs.FilterDesc()
			_, all := m.c.st.Jobs(state.JobQuery{}, 0, 0)
			m.setStatus(fmt.Sprintf("writing %d jobs to %s…", len(jobs), path), false)
			cmd := writeExportCmd(path, format, jobs, m.c.now())
			return func() tea.Msg {
				msg := cmd().(exportedMsg)
				msg.of, msg.filter, msg.paused = all, filter, frozen
				return msg
			}
		}
	}
	var cmd tea.Cmd
	m.export.input, cmd = m.export.input.Update(msg)
	return cmd
}

// writeExportCmd writes jobs to path off the update loop (the jobs are the
// command's own copy).
func writeExportCmd(path string, format Format, jobs []state.JobView, now time.Time) tea.Cmd {
	return func() tea.Msg {
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		return exportedMsg{path: abs, n: len(jobs), format: format, err: WriteExportFile(abs, format, jobs, now)}
	}
}

// WriteCSVFile writes jobs as CSV (package export) to path, through a
// temporary file renamed into place, so that a reader never sees half a
// file.
func WriteCSVFile(path string, jobs []state.JobView) error {
	return WriteExportFile(path, FormatCSV, jobs, time.Time{})
}

// WriteExportFile writes jobs in format f to path, through a temporary
// file renamed into place, so that a reader never sees half a file. now
// ends the stages in progress of a Chrome trace.
func WriteExportFile(path string, f Format, jobs []state.JobView, now time.Time) error {
	return writeFileAtomic(path, "export "+f.String(), func(w io.Writer) error {
		switch f {
		case FormatNextflow:
			return export.WriteNextflowTrace(w, jobs)
		case FormatChrome:
			return export.WriteChromeTrace(w, jobs, now)
		}
		return export.WriteCSV(w, jobs)
	})
}

// writeFileAtomic writes path with write, through a temporary file in its
// directory renamed into place; what names the operation in errors.
func writeFileAtomic(path, what string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s to %s: %w", what, path, withoutPath(err))
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	w := bufio.NewWriterSize(tmp, 64<<10)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%s to %s: %w", what, path, withoutPath(err))
	}
	return nil
}

// withoutPath is err without the file names of a path or link error (the
// temporary file's, which would only confuse): its cause, such as "no
// space left on device".
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func (m *Model) onExported(msg exportedMsg) {
	if msg.err != nil {
		m.setStatus(msg.err.Error(), true)
		return
	}
	what := fmt.Sprintf("%d jobs", msg.n)
	if msg.filter != "" {
		what = fmt.Sprintf("%d of %d jobs (filter: %s)", msg.n, msg.of, msg.filter)
	}
	if msg.paused {
		what += " as shown when paused"
	}
	m.setStatus(fmt.Sprintf("exported %s to %s (%s)", what, msg.path, msg.format), false)
}

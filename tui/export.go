package tui

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// exportPrompt asks where to write the jobs table as CSV.
type exportPrompt struct {
	active bool
	input  textinput.Model
}

// exportedMsg reports a finished export.
type exportedMsg struct {
	path string
	n    int
	err  error
}

func newExportPrompt() exportPrompt {
	ti := textinput.New()
	ti.Prompt = "export CSV to: "
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
// (its filter and order, or while paused its snapshot) in the background,
// esc cancels.
func (m *Model) updateExport(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch k.String() {
		case "esc":
			m.export.active = false
			m.export.input.Blur()
			m.setStatus("export cancelled", false)
			return nil
		case "enter":
			m.export.active = false
			m.export.input.Blur()
			path := strings.TrimSpace(m.export.input.Value())
			if path == "" {
				m.setStatus("export cancelled: no file name", true)
				return nil
			}
			jobs, frozen := m.jobs.Snapshot()
			if frozen {
				jobs = append([]state.JobView(nil), jobs...)
			} else {
				jobs, _ = m.c.st.Jobs(m.jobs.Query(), 0, -1)
			}
			m.setStatus(fmt.Sprintf("writing %d jobs to %s…", len(jobs), path), false)
			return writeCSVCmd(path, jobs)
		}
	}
	var cmd tea.Cmd
	m.export.input, cmd = m.export.input.Update(msg)
	return cmd
}

// writeCSVCmd writes jobs to path off the update loop (the jobs are the
// command's own copy).
func writeCSVCmd(path string, jobs []state.JobView) tea.Cmd {
	return func() tea.Msg {
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		return exportedMsg{path: abs, n: len(jobs), err: WriteCSVFile(abs, jobs)}
	}
}

// WriteCSVFile writes jobs as CSV (package export) to path, through a
// temporary file renamed into place, so that a reader never sees half a
// file.
func WriteCSVFile(path string, jobs []state.JobView) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary name would only confuse
		}
		return fmt.Errorf("export CSV to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	w := bufio.NewWriterSize(tmp, 64<<10)
	err = export.WriteCSV(w, jobs)
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
		return fmt.Errorf("export CSV to %s: %w", path, err)
	}
	return nil
}

func (m *Model) onExported(msg exportedMsg) {
	if msg.err != nil {
		m.setStatus(msg.err.Error(), true)
		return
	}
	m.setStatus(fmt.Sprintf("exported %d jobs to %s", msg.n, msg.path), false)
}

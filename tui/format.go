package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// Formatting of figures for narrow columns. Every function returns plain
// text; styling is the caller's.

// fmtDur writes d in at most 6 columns: 850ms, 3.25s, 12.5s, 4m05s, 1h02m,
// 3d04h.
func fmtDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Millisecond:
		if d == 0 {
			return "0s"
		}
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
	case d < time.Second:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		m := int64(d / time.Minute)
		s := int64((d % time.Minute) / time.Second)
		return strconv.FormatInt(m, 10) + "m" + pad2(s) + "s"
	case d < 24*time.Hour:
		h := int64(d / time.Hour)
		m := int64((d % time.Hour) / time.Minute)
		return strconv.FormatInt(h, 10) + "h" + pad2(m) + "m"
	default:
		days := int64(d / (24 * time.Hour))
		h := int64((d % (24 * time.Hour)) / time.Hour)
		return strconv.FormatInt(days, 10) + "d" + pad2(h) + "h"
	}
}

// fmtAge is a coarse age: 3s, 4m, 2h, 5d.
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d < 24*time.Hour:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// fmtBytes writes n in binary units: 512B, 4.0KiB, 12MiB, 1.5GiB.
func fmtBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	const units = "KMGTPE"
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + string(units[i]) + "iB"
}

// fmtBytesShort is fmtBytes without a decimal from 10 units on: 512B,
// 4.0KiB, 12MiB, 1.5GiB.
func fmtBytesShort(n int64) string {
	s := fmtBytes(n)
	if i := strings.IndexByte(s, '.'); i >= 2 {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return s[:i] + s[j:]
	}
	return s
}

// fmtRate writes a byte rate: 4.0KiB/s.
func fmtRate(bytesPerSec float64) string {
	if bytesPerSec <= 0 {
		return "0B/s"
	}
	return fmtBytes(int64(bytesPerSec)) + "/s"
}

// fmtFloat writes a per-second figure with one decimal below 100.
func fmtFloat(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// fmtCount writes a count, with k and M for large values, in at most 6
// columns.
func fmtCount(n int64) string {
	switch {
	case n < 100000:
		return strconv.FormatInt(n, 10)
	case n < 10000000:
		return strconv.FormatInt(n/1000, 10) + "k"
	}
	return strconv.FormatInt(n/1000000, 10) + "M"
}

// shortID shortens an executor's UUID to its first 8 characters.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// fit truncates s to w columns (with an ellipsis) or pads it with spaces
// to exactly w columns. s may hold ANSI styles.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := ansi.StringWidth(s)
	if n > w {
		return ansi.Truncate(s, w, "…")
	}
	if n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// fitRight is fit aligned to the right.
func fitRight(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := ansi.StringWidth(s)
	if n > w {
		return ansi.Truncate(s, w, "…")
	}
	if n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// fitPlain is fit for plain ASCII-or-UTF-8 text without styles, faster
// for the table cells.
func fitPlain(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	n := len(s)
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		n = ansi.StringWidth(s)
	}
	switch {
	case n > w:
		if ascii {
			if w == 1 {
				return "…"
			}
			return s[:w-1] + "…"
		}
		return ansi.Truncate(s, w, "…")
	case n < w && right:
		return strings.Repeat(" ", w-n) + s
	case n < w:
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// block pads or cuts lines to exactly h lines of w columns.
func block(lines []string, w, h int) string {
	if h <= 0 {
		return ""
	}
	var b strings.Builder
	blank := strings.Repeat(" ", max(w, 0))
	for i := range h {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i < len(lines) {
			b.WriteString(fit(lines[i], w))
		} else {
			b.WriteString(blank)
		}
	}
	return b.String()
}

// ansiWidth is the width of s in columns, ANSI sequences aside.
func ansiWidth(s string) int { return ansi.StringWidth(s) }

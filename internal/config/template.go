package config

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// The original executor ran its settings file through Ruby's ERB. Only the
// fixed subset of tags below is supported; any other "<% ... %>" is an error.
var (
	// <%= ENV['NAME'] %>
	tagEnv = regexp.MustCompile(`^=\s*ENV\[\s*(?:'([^']+)'|"([^"]+)")\s*\]\s*$`)
	// <%= ENV['NAME'] || 'default' %>, <%= ENV['NAME'] or "default" %>
	tagEnvDefault = regexp.MustCompile(`^=\s*ENV\[\s*(?:'([^']+)'|"([^"]+)")\s*\]\s*(?:\|\||or)\s*(?:'([^']*)'|"([^"]*)")\s*$`)
	// <%= Executor::cpu_count %>
	tagCPUCount = regexp.MustCompile(`^=\s*Executor::cpu_count\s*$`)
)

const supportedTags = `<%= ENV['NAME'] %>, <%= ENV['NAME'] || 'default' %>, ` +
	`<%= ENV['NAME'] or "default" %> and <%= Executor::cpu_count %>`

// renderTemplates replaces the template tags of src line by line, so that
// the rendered text keeps the line numbers of src. name is the file name
// used in errors.
//
// A tag that is a whole YAML value ("key: <%= ... %>", "- <%= ... %>") is
// rendered as a double-quoted YAML string, so that any value (holding ": ",
// " #", quotes, or the trailing space of "./grid_proxy ") stays as it is,
// and as nothing when it is empty, so that the key counts as unset. A tag
// that is the whole content of a quoted YAML string is escaped for it. Any
// other tag is replaced by its value as is, which then must not hold a line
// break.
func renderTemplates(name string, src []byte, getenv func(string) string) ([]byte, error) {
	var b strings.Builder
	b.Grow(len(src))
	for i, line := range strings.SplitAfter(string(src), "\n") {
		if !strings.Contains(line, "<%") {
			b.WriteString(line)
			continue
		}
		out, err := renderLine(line, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		b.WriteString(out)
	}
	return []byte(b.String()), nil
}

func renderLine(line string, getenv func(string) string) (string, error) {
	body := strings.TrimRight(line, "\r\n")
	eol := line[len(body):]
	var b strings.Builder
	pos := 0
	for {
		i := strings.Index(body[pos:], "<%")
		if i < 0 {
			break
		}
		start := pos + i
		j := strings.Index(body[start+2:], "%>")
		if j < 0 {
			return "", fmt.Errorf("template tag %q is not closed on its line", body[start:])
		}
		end := start + 2 + j + 2
		tag := body[start:end]
		val, err := evalTag(tag[2:len(tag)-2], getenv)
		if err != nil {
			return "", fmt.Errorf("template %s: %w", tag, err)
		}
		out, err := placeValue(body[:start], body[end:], val)
		if err != nil {
			return "", fmt.Errorf("template %s: %w", tag, err)
		}
		b.WriteString(body[pos:start])
		b.WriteString(out)
		pos = end
	}
	b.WriteString(body[pos:])
	b.WriteString(eol)
	return b.String(), nil
}

// evalTag evaluates the text between "<%" and "%>".
func evalTag(inner string, getenv func(string) string) (string, error) {
	if m := tagEnv.FindStringSubmatch(inner); m != nil {
		return getenv(m[1] + m[2]), nil
	}
	if m := tagEnvDefault.FindStringSubmatch(inner); m != nil {
		if v := getenv(m[1] + m[2]); v != "" {
			return v, nil
		}
		// The default as written between its quotes, no escapes processed.
		return m[3] + m[4], nil
	}
	if tagCPUCount.MatchString(inner) {
		n := runtime.NumCPU()
		if n < 1 {
			n = 1
		}
		return strconv.Itoa(n), nil
	}
	return "", errors.New("unsupported template; only " + supportedTags + " are supported")
}

// placeValue returns the text that replaces a tag found between before and
// after on its line.
func placeValue(before, after, val string) (string, error) {
	switch {
	case strings.HasSuffix(before, `"`) && strings.HasPrefix(after, `"`):
		q := strconv.Quote(val)
		return q[1 : len(q)-1], nil
	case strings.HasSuffix(before, "'") && strings.HasPrefix(after, "'"):
		if strings.ContainsAny(val, "\r\n") {
			return "", errors.New("the value holds a line break, which a single-quoted string cannot keep")
		}
		return strings.ReplaceAll(val, "'", "''"), nil
	case isValueStart(before) && isValueEnd(after):
		if val == "" {
			return "", nil
		}
		return strconv.Quote(val), nil
	}
	if strings.ContainsAny(val, "\r\n") {
		return "", errors.New("the value holds a line break; use the template as a whole value (key: <%= ... %>)")
	}
	return val, nil
}

// isValueStart reports whether a YAML value starts right after before:
// "key: " or "- ".
func isValueStart(before string) bool {
	t := strings.TrimRight(before, " \t")
	if len(t) == len(before) {
		return false
	}
	return strings.HasSuffix(t, ":") || strings.TrimLeft(t, " \t") == "-"
}

// isValueEnd reports whether the YAML value ends right before after: end
// of line or a comment.
func isValueEnd(after string) bool {
	t := strings.TrimLeft(after, " \t")
	return t == "" || (len(t) < len(after) && t[0] == '#')
}

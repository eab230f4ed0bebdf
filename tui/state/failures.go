package state

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

const (
	// executorStderrTail is the size of the executor's stderr_tail (wire.md
	// §3): a tail that long was probably cut in the middle of a line.
	executorStderrTail = 2048
	maxSignature       = 200
)

// failGroup is one FailureGroup.
type failGroup struct {
	key, executable, hostname, signature, line string
	exit                                       int
	hasExit                                    bool
	count                                      int64
	first, last                                float64
	ids                                        []string // ring of the newest, up to MaxGroupJobs
	head                                       int      // oldest id once full
}

// addFailure counts failed job j (just finished) in its group.
func (m *model) addFailure(j *job) {
	line := failureLine(j.stderr, j.exceptions)
	sig := signature(line)
	host := j.exec.hostname
	if host == "" && j.metrics != nil {
		host = j.metrics.Hostname
	}
	exe := statName(j)
	exit := "?"
	if j.hasExit {
		exit = strconv.Itoa(int(j.exit))
	}
	key := exe + "\x00" + exit + "\x00" + sig + "\x00" + host
	g, ok := m.groups[key]
	if !ok {
		if len(m.groups) >= m.opts.MaxFailureGroups {
			m.dropGroup()
		}
		g = &failGroup{key: key, executable: exe, hostname: host, signature: sig,
			exit: int(j.exit), hasExit: j.hasExit}
		m.groups[key] = g
	}
	at := j.finished
	g.count++
	if g.count == 1 || at < g.first {
		g.first = at
	}
	if g.count == 1 || at >= g.last {
		g.last = at
		g.line = line
	}
	if len(g.ids) < MaxGroupJobs {
		g.ids = append(g.ids, j.id)
	} else {
		g.ids[g.head] = j.id
		g.head = (g.head + 1) % len(g.ids)
	}
	j.group = g
}

// dropGroup forgets the group that failed least recently.
func (m *model) dropGroup() {
	var victim *failGroup
	for _, g := range m.groups {
		if victim == nil || g.last < victim.last || (g.last == victim.last && g.key < victim.key) {
			victim = g
		}
	}
	if victim != nil {
		delete(m.groups, victim.key)
	}
}

func (m *model) failureGroups() []FailureGroup {
	out := make([]FailureGroup, 0, len(m.groups))
	for _, g := range m.groups {
		v := FailureGroup{
			Key:        g.key,
			Executable: g.executable,
			ExitStatus: g.exit,
			HasExit:    g.hasExit,
			Hostname:   g.hostname,
			Signature:  g.signature,
			Line:       g.line,
			Count:      g.count,
			First:      tsTime(g.first),
			Last:       tsTime(g.last),
			Jobs:       make([]string, 0, len(g.ids)),
		}
		for i := len(g.ids) - 1; i >= 0; i-- {
			v.Jobs = append(v.Jobs, g.ids[(g.head+i)%len(g.ids)])
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b FailureGroup) int {
		return cmp.Or(b.Last.Compare(a.Last), cmp.Compare(b.Count, a.Count), strings.Compare(a.Key, b.Key))
	})
	return out
}

// failureLine is the line a failure is known by: the first line of its
// stderr tail (the first complete one when the tail was cut), else of its
// first exception.
func failureLine(stderr string, exceptions []string) string {
	s := stderr
	if len(s) >= executorStderrTail-3 { // cut at a rune start, up to 3 bytes short
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	if l := firstLine(s); l != "" {
		return l
	}
	for _, e := range exceptions {
		if l := firstLine(e); l != "" {
			return l
		}
	}
	return ""
}

func firstLine(s string) string {
	for s != "" {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		if line = strings.TrimSpace(line); line != "" {
			return truncate(line, maxSignature)
		}
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// signature writes the numbers of a line as #: runs of hexadecimal digits
// 8 long or more that hold a decimal digit (ids, addresses, hashes), and
// runs of decimal digits.
func signature(line string) string {
	var b strings.Builder
	b.Grow(len(line))
	for i := 0; i < len(line); {
		c := line[i]
		if !isHex(c) {
			b.WriteByte(c)
			i++
			continue
		}
		k, digit := i, false
		for k < len(line) && isHex(line[k]) {
			digit = digit || isDigit(line[k])
			k++
		}
		run := line[i:k]
		switch {
		case digit && len(run) >= 8:
			b.WriteByte('#')
		case digit:
			// Decimal runs within a shorter run (file5, e1, 0x1f).
			for p := 0; p < len(run); {
				if !isDigit(run[p]) {
					b.WriteByte(run[p])
					p++
					continue
				}
				for p < len(run) && isDigit(run[p]) {
					p++
				}
				b.WriteByte('#')
			}
		default:
			b.WriteString(run)
		}
		i = k
	}
	return b.String()
}

package state

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jobsCache is the last selection Jobs made, valid while the jobs and the
// query are the same.
type jobsCache struct {
	valid        bool
	q            JobQuery
	ver          uint64
	list         []*job
	entries, tmp []sortEntry // reused
	counts       *[16][256]int
}

// sortEntry is a job with its sort key beside it, as integers that order
// as the values do, so that sorting 10k jobs compares contiguous integers
// rather than chasing a pointer per comparison.
type sortEntry struct {
	key, started uint64
	j            *job
}

func compareEntries(a, b sortEntry) int {
	switch {
	case a.key < b.key:
		return -1
	case a.key > b.key:
		return 1
	case a.started < b.started:
		return -1
	case a.started > b.started:
		return 1
	}
	return strings.Compare(a.j.id, b.j.id)
}

// radixSort sorts entries as compareEntries orders them: a stable LSD
// radix sort on (key, started), 8 bits a pass, skipping the passes whose
// digit is the same for all, then runs of equal (key, started) by id.
// Sorting 10k jobs so is several times faster than a comparison sort.
func radixSort(entries, tmp []sortEntry, counts *[16][256]int) {
	n := len(entries)
	if n < 2 {
		return
	}
	*counts = [16][256]int{}
	for i := range entries {
		k, s := entries[i].key, entries[i].started
		for d := range 8 {
			counts[d][byte(s>>(8*d))]++
			counts[8+d][byte(k>>(8*d))]++
		}
	}
	digit := func(e *sortEntry, pass int) byte {
		if pass < 8 {
			return byte(e.started >> (8 * pass))
		}
		return byte(e.key >> (8 * (pass - 8)))
	}
	src, dst := entries, tmp
	for pass := range 16 {
		c := &counts[pass]
		if c[digit(&src[0], pass)] == n {
			continue // one bucket: nothing moves
		}
		sum := 0
		for b := range c {
			c[b], sum = sum, sum+c[b]
		}
		for i := range src {
			d := digit(&src[i], pass)
			dst[c[d]] = src[i]
			c[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &entries[0] {
		copy(entries, src)
	}
	for i := 0; i < n; {
		k := i + 1
		for k < n && entries[k].key == entries[i].key && entries[k].started == entries[i].started {
			k++
		}
		if k-i > 1 {
			slices.SortFunc(entries[i:k], compareEntries)
		}
		i = k
	}
}

// orderedBits maps a float64 to a uint64 of the same order.
func orderedBits(f float64) uint64 {
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

// numericKey is the sort key k of j as a number; false for the keys that
// are strings.
func numericKey(k SortKey, j *job) (float64, bool) {
	switch k {
	case SortStarted:
		return 0, true
	case SortFinished:
		return j.finished, true
	case SortState:
		return float64(j.state), true
	case SortExitStatus:
		return float64(exitKey(j)), true
	case SortStageIn:
		return j.stages[stIn].dur, true
	case SortExecution:
		return j.stages[stExec].dur, true
	case SortStageOut:
		return j.stages[stOut].dur, true
	case SortInputSize:
		return float64(inputSize(j)), true
	case SortOutputSize:
		return float64(outputSize(j)), true
	case SortDuration:
		return duration(j), true
	case SortLastEvent:
		return float64(j.lastRecv), true
	case SortDeadline:
		return deadlineKey(j), true
	}
	return 0, false
}

// stringKey is the sort key k of j for the string keys with few distinct
// values.
func stringKey(k SortKey, j *job) (string, bool) {
	switch k {
	case SortExecutor:
		return j.exec.id, true
	case SortHostname:
		return j.exec.hostname, true
	case SortExecutable:
		return j.executable, true
	}
	return "", false
}

// sortFast sorts list by k through sortEntry keys; false (list untouched)
// when k needs the full comparator.
func (c *jobsCache) sortFast(list []*job, k SortKey, reverse bool) bool {
	if len(list) == 0 {
		return true
	}
	entries := slices.Grow(c.entries[:0], len(list))[:len(list)]
	tmp := slices.Grow(c.tmp[:0], len(list))[:len(list)]
	defer func() {
		clear(entries) // no pointers kept to jobs that may be dropped
		clear(tmp)
		c.entries, c.tmp = entries[:0], tmp[:0]
	}()
	if _, ok := numericKey(k, list[0]); ok {
		for i, j := range list {
			f, _ := numericKey(k, j)
			entries[i] = sortEntry{key: orderedBits(f), started: orderedBits(j.started), j: j}
		}
	} else if _, ok := stringKey(k, list[0]); ok {
		// Few distinct values: sort those, key the jobs by rank.
		rank := make(map[string]uint64)
		for _, j := range list {
			s, _ := stringKey(k, j)
			rank[s] = 0
		}
		distinct := make([]string, 0, len(rank))
		for s := range rank {
			distinct = append(distinct, s)
		}
		slices.Sort(distinct)
		for i, s := range distinct {
			rank[s] = uint64(i)
		}
		for i, j := range list {
			s, _ := stringKey(k, j)
			entries[i] = sortEntry{key: rank[s], started: orderedBits(j.started), j: j}
		}
	} else {
		return false
	}
	// Nearly sorted already (the start order is nearly the order jobs
	// are first seen in): pdqsort is then close to linear. Otherwise a
	// radix sort.
	unordered := 0
	for i := 1; i < len(entries); i++ {
		if compareEntries(entries[i-1], entries[i]) > 0 {
			unordered++
		}
	}
	if unordered <= len(entries)/16 {
		slices.SortFunc(entries, compareEntries)
	} else {
		if c.counts == nil {
			c.counts = new([16][256]int)
		}
		radixSort(entries, tmp, c.counts)
	}
	if reverse {
		slices.Reverse(entries)
	}
	for i := range entries {
		list[i] = entries[i].j
	}
	return true
}

func (m *model) selection(q JobQuery) []*job {
	c := &m.cache
	if c.valid && c.q == q && c.ver == m.jobsVersion {
		return c.list
	}
	list := c.list[:0]
	text := newTextMatch(q.Text)
	for _, j := range m.order {
		if !j.dropped && q.match(j, &text) {
			list = append(list, j)
		}
	}
	if !c.sortFast(list, q.Sort, q.Reverse) {
		cmpf := comparator(q.Sort)
		if q.Reverse {
			slices.SortFunc(list, func(a, b *job) int { return cmpf(b, a) })
		} else {
			slices.SortFunc(list, cmpf)
		}
	}
	clear(list[len(list):cap(list)]) // drop pointers to dropped jobs
	*c = jobsCache{valid: true, q: q, ver: m.jobsVersion, list: list, entries: c.entries}
	return list
}

// textMatch is JobQuery.Text made ready to match: in lower case, and the
// exit status it names ("137", "exit 137", "exit=137").
type textMatch struct {
	lower   string
	exit    int
	hasExit bool
	// exitOnly: the text was "exit N", which only the exit status can
	// match.
	exitOnly bool
}

func newTextMatch(text string) textMatch {
	t := textMatch{lower: strings.ToLower(strings.TrimSpace(text))}
	n := t.lower
	for _, p := range []string{"exit ", "exit=", "exit:"} {
		if rest, ok := strings.CutPrefix(n, p); ok {
			n, t.exitOnly = strings.TrimSpace(rest), true
			break
		}
	}
	if v, err := strconv.Atoi(n); err == nil {
		t.exit, t.hasExit = v, true
	} else {
		t.exitOnly = false
	}
	return t
}

// matches says whether job j has the text in any of its fields: id,
// executable, host, executor id, thread, state, exit status, and the
// first line of its stderr (or of its first exception).
func (t *textMatch) matches(j *job) bool {
	if t.lower == "" {
		return true
	}
	if t.hasExit {
		switch {
		case j.hasExit && int(j.exit) == t.exit, !j.hasExit && j.hasExecExit && int(j.execExit) == t.exit:
			return true
		case t.exitOnly:
			return false
		}
	}
	lower := t.lower
	if containsFold(j.id, lower) || containsFold(j.executable, lower) ||
		containsFold(j.exec.hostname, lower) || containsFold(j.exec.id, lower) ||
		containsFold(j.thread, lower) || containsFold(j.state.String(), lower) {
		return true
	}
	if j.metrics != nil && j.exec.hostname == "" && containsFold(j.metrics.Hostname, lower) {
		return true
	}
	if j.stderr != "" || len(j.exceptions) > 0 {
		return containsFold(failureLine(j.stderr, j.exceptions), lower)
	}
	return false
}

func (q *JobQuery) match(j *job, text *textMatch) bool {
	if !q.States.Has(j.state) {
		return false
	}
	if q.Executor != "" && j.exec.id != q.Executor {
		return false
	}
	if q.Executable != "" && j.executable != q.Executable {
		return false
	}
	if q.Flags != 0 && q.Flags&jobFlags(j) != q.Flags {
		return false
	}
	if q.Group != "" && (j.group == nil || j.group.key != q.Group || j.state != StateFailed) {
		return false
	}
	return text.matches(j)
}

// containsFold says whether s contains lower (already lower case), ignoring
// case, without allocating for ASCII text.
func containsFold(s, lower string) bool {
	if len(lower) > len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.Contains(strings.ToLower(s), lower)
		}
	}
	n := len(lower)
outer:
	for i := 0; i+n <= len(s); i++ {
		for k := 0; k < n; k++ {
			c := s[i+k]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[k] {
				continue outer
			}
		}
		return true
	}
	return false
}

func (m *model) jobsPage(q JobQuery, offset, limit int) ([]JobView, int) {
	list := m.selection(q)
	total := len(list)
	offset = max(offset, 0)
	if offset >= total {
		return nil, total
	}
	end := total
	if limit >= 0 {
		end = min(offset+limit, total)
	}
	page := make([]JobView, end-offset)
	for i, j := range list[offset:end] {
		page[i] = m.jobView(j)
	}
	return page, total
}

func (m *model) jobIndex(q JobQuery, id string) int {
	for i, j := range m.selection(q) {
		if j.id == id {
			return i
		}
	}
	return -1
}

// jobFlags are j's marks for JobQuery.Flags.
func jobFlags(j *job) JobFlags {
	var f JobFlags
	running := j.state == StateRunning
	if running && j.stalled {
		f |= FlagStalled
	}
	if j.redelivered {
		f |= FlagRedelivered
	}
	if running && j.nearDeadline {
		f |= FlagNearDeadline
	}
	if j.partial {
		f |= FlagPartial
	}
	return f
}

// deadlineKey orders jobs by deadline, those without one last.
func deadlineKey(j *job) float64 {
	if d := jobDeadline(j); d > 0 {
		return d
	}
	return math.Inf(1)
}

func byStarted(a, b *job) int {
	return cmp.Or(cmp.Compare(a.started, b.started), strings.Compare(a.id, b.id))
}

func duration(j *job) float64 {
	if j.started == 0 {
		return 0
	}
	end := j.finished
	if end == 0 {
		end = j.lastTS
	}
	return max(end-j.started, 0)
}

func inputSize(j *job) int64 {
	if j.metrics != nil {
		return j.metrics.InputSize
	}
	return j.stages[stIn].bytes
}

func outputSize(j *job) int64 {
	if j.metrics != nil {
		return j.metrics.OutputSize
	}
	return j.stages[stOut].bytes
}

func exitKey(j *job) int64 {
	switch {
	case j.hasExit:
		return int64(j.exit)
	case j.hasExecExit:
		return int64(j.execExit)
	}
	return -1 << 40 // unknown sorts first
}

func compareThreads(a, b *job) int {
	switch {
	case a.threadN >= 0 && b.threadN >= 0:
		return cmp.Compare(a.threadN, b.threadN)
	case a.threadN >= 0:
		return -1
	case b.threadN >= 0:
		return 1
	}
	return strings.Compare(a.thread, b.thread)
}

func comparator(k SortKey) func(a, b *job) int {
	var primary func(a, b *job) int
	switch k {
	case SortFinished:
		primary = func(a, b *job) int { return cmp.Compare(a.finished, b.finished) }
	case SortID:
		return func(a, b *job) int { return strings.Compare(a.id, b.id) }
	case SortExecutor:
		primary = func(a, b *job) int { return strings.Compare(a.exec.id, b.exec.id) }
	case SortHostname:
		primary = func(a, b *job) int { return strings.Compare(a.exec.hostname, b.exec.hostname) }
	case SortThread:
		primary = func(a, b *job) int {
			return cmp.Or(strings.Compare(a.exec.hostname, b.exec.hostname),
				strings.Compare(a.exec.id, b.exec.id), compareThreads(a, b))
		}
	case SortExecutable:
		primary = func(a, b *job) int { return strings.Compare(a.executable, b.executable) }
	case SortState:
		primary = func(a, b *job) int { return cmp.Compare(a.state, b.state) }
	case SortExitStatus:
		primary = func(a, b *job) int { return cmp.Compare(exitKey(a), exitKey(b)) }
	case SortStageIn:
		primary = func(a, b *job) int { return cmp.Compare(a.stages[stIn].dur, b.stages[stIn].dur) }
	case SortExecution:
		primary = func(a, b *job) int { return cmp.Compare(a.stages[stExec].dur, b.stages[stExec].dur) }
	case SortStageOut:
		primary = func(a, b *job) int { return cmp.Compare(a.stages[stOut].dur, b.stages[stOut].dur) }
	case SortInputSize:
		primary = func(a, b *job) int { return cmp.Compare(inputSize(a), inputSize(b)) }
	case SortOutputSize:
		primary = func(a, b *job) int { return cmp.Compare(outputSize(a), outputSize(b)) }
	case SortDuration:
		primary = func(a, b *job) int { return cmp.Compare(duration(a), duration(b)) }
	case SortLastEvent:
		primary = func(a, b *job) int { return cmp.Compare(a.lastRecv, b.lastRecv) }
	case SortDeadline:
		primary = func(a, b *job) int { return cmp.Compare(deadlineKey(a), deadlineKey(b)) }
	default:
		return byStarted
	}
	return func(a, b *job) int {
		if c := primary(a, b); c != 0 {
			return c
		}
		return byStarted(a, b)
	}
}

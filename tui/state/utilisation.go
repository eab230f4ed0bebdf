package state

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// Utilisation is kept per thread as busy seconds per phase in time buckets
// of UtilisationWindow/utilBucketsPerWindow (event timestamps), a ring of
// utilSlots: a stage adds its time to the buckets it spans when it ends,
// the stages in progress are added at query time.
const (
	utilBucketsPerWindow = 20
	utilSlots            = utilBucketsPerWindow + 4
	// minDiagnosisSpan: Diagnosis says nothing of an executor seen for
	// less.
	minDiagnosisSpan = 30 * time.Second
	// Diagnosis thresholds: mostly idle, mostly staging.
	idleVerdict    = 0.5
	stagingVerdict = 0.25
)

type utilRing struct {
	idx  [utilSlots]int64      // bucket number held (floor(ts/width)); 0 empty
	busy [utilSlots][3]float32 // seconds per phase (stage-in, execution, stage-out)
}

// busy adds [a, b) of phase p on thread t of executor x to its
// utilisation.
func (m *model) busy(x *executor, t *thread, p uint8, a, b float64) {
	if p == phaseNone || !(b > a) || a <= 0 {
		return
	}
	if a < x.since {
		x.since = a
	}
	if t.util == nil {
		t.util = new(utilRing)
	}
	r := t.util
	w := m.utilWidth
	kb := int64(math.Floor(b / w))
	ka := int64(math.Floor(a / w))
	if ka < kb-utilSlots+1 {
		ka = kb - utilSlots + 1
		a = float64(ka) * w
	}
	for k := ka; k <= kb; k++ {
		lo, hi := max(a, float64(k)*w), min(b, float64(k+1)*w)
		if hi <= lo {
			continue
		}
		s := int(((k % utilSlots) + utilSlots) % utilSlots)
		if r.idx[s] != k {
			if r.idx[s] > k {
				continue // older than the ring holds
			}
			r.idx[s], r.busy[s] = k, [3]float32{}
		}
		r.busy[s][p-1] += float32(hi - lo)
	}
}

// threadBusy is the busy seconds per phase of thread t in [from, to]:
// exact from its intervals when it still holds all those of the span,
// else from its buckets (within a bucket at the span's start).
func (m *model) threadBusy(t *thread, from, to float64) (out [3]float64) {
	ring := &t.iv
	if ring.dropped <= from {
		for i := range ring.n {
			iv := ring.at(i)
			end := iv.end
			if end == 0 {
				end = to
			}
			if a, b := max(iv.start, from), min(end, to); b > a && iv.phase != phaseNone {
				out[iv.phase-1] += b - a
			}
		}
		return out
	}
	w := m.utilWidth
	if r := t.util; r != nil {
		last := int64(math.Floor(to/w)) + 1 // a stage a little in the future: clock skew
		for s := range utilSlots {
			k := r.idx[s]
			if k == 0 || k > last {
				continue
			}
			lo, hi := float64(k)*w, float64(k+1)*w
			if hi <= from {
				continue
			}
			frac := 1.0
			if lo < from {
				frac = (hi - from) / w // spread evenly over the bucket
			}
			for p := range 3 {
				out[p] += float64(r.busy[s][p]) * frac
			}
		}
	}
	// Stages in progress.
	for i := ring.n - 1; i >= 0 && i >= ring.n-8; i-- {
		iv := ring.at(i)
		if iv.end != 0 || iv.phase == phaseNone {
			continue
		}
		if a := max(iv.start, from); to > a {
			out[iv.phase-1] += to - a
		}
	}
	return out
}

// openStart is the earliest start of a stage in progress on x's threads
// (0 if none).
func openStart(list []*thread) float64 {
	first := 0.0
	for _, t := range list {
		ring := &t.iv
		for i := ring.n - 1; i >= 0 && i >= ring.n-8; i-- {
			if iv := ring.at(i); iv.end == 0 && iv.start > 0 && (first == 0 || iv.start < first) {
				first = iv.start
			}
		}
	}
	return first
}

// utilSpan is the span [from, to] executor x's utilisation is over at now.
func (m *model) utilSpan(x *executor, list []*thread, now time.Time) (from, to float64) {
	to = eventbus.Timestamp(now)
	if x.stopped && x.stoppedTS > 0 && x.stoppedTS < to {
		to = x.stoppedTS
	}
	from = to - m.opts.UtilisationWindow.Seconds()
	seen := x.since
	if o := openStart(list); o > 0 && (seen == 0 || o < seen) {
		seen = o
	}
	if seen > from {
		from = seen
	}
	return from, to
}

func shares(busy [3]float64, span float64, threads int) Utilisation {
	u := Utilisation{Span: seconds(span), Threads: threads}
	if span <= 0 || threads <= 0 {
		return u
	}
	d := span * float64(threads)
	u.StageIn = min(busy[0]/d, 1)
	u.Execution = min(busy[1]/d, 1)
	u.StageOut = min(busy[2]/d, 1)
	return u
}

func (m *model) utilisation(executorID string, now time.Time) (Utilisation, []ThreadUtilisation, bool) {
	x, ok := m.execs[executorID]
	if !ok {
		return Utilisation{}, nil, false
	}
	list := sortedThreads(x)
	from, to := m.utilSpan(x, list, now)
	if to <= from || len(list) == 0 {
		return Utilisation{Threads: len(list)}, nil, false
	}
	per := make([]ThreadUtilisation, len(list))
	var sum [3]float64
	for i, t := range list {
		b := m.threadBusy(t, from, to)
		for p := range 3 {
			sum[p] += b[p]
		}
		per[i] = ThreadUtilisation{Thread: t.key, Slot: i + 1, Utilisation: shares(b, to-from, 1)}
	}
	return shares(sum, to-from, len(list)), per, true
}

func (m *model) clusterUtilisation(now time.Time) Utilisation {
	var busy [3]float64
	var capacity float64 // thread-seconds
	threads := 0
	span := 0.0
	for _, x := range m.execs {
		if x.stopped || x.status == StatusGone {
			continue
		}
		list := sortedThreads(x)
		from, to := m.utilSpan(x, list, now)
		if to <= from || len(list) == 0 {
			continue
		}
		for _, t := range list {
			b := m.threadBusy(t, from, to)
			for p := range 3 {
				busy[p] += b[p]
			}
		}
		capacity += (to - from) * float64(len(list))
		threads += len(list)
		span = max(span, to-from)
	}
	if capacity <= 0 {
		return Utilisation{}
	}
	// Shares of the capacity, reported as over the longest span.
	u := shares(busy, capacity/float64(threads), threads)
	u.Span = seconds(span)
	return u
}

func pct(f float64) int { return int(math.Round(f * 100)) }

func (m *model) diagnosis(executorID string, now time.Time) string {
	x, ok := m.execs[executorID]
	if !ok || x.status != StatusOnline {
		return ""
	}
	u, _, ok := m.utilisation(executorID, now)
	if !ok || u.Span < min(minDiagnosisSpan, m.opts.UtilisationWindow) {
		return ""
	}
	switch {
	case u.Idle() >= idleVerdict:
		return fmt.Sprintf("idle %d%%: too few jobs for %d threads", pct(u.Idle()), u.Threads)
	case u.Staging() >= stagingVerdict && u.Staging() > u.Execution:
		return fmt.Sprintf("exec %d%%, staging %d%%: transfers dominate", pct(u.Execution), pct(u.Staging()))
	}
	return ""
}

// Storage traffic.

// rateSlots: per-second buckets of bytes moved, at least RateWindow.
const rateSlots = 64

const unknownStorage = "(unknown)"

type storeStat struct {
	name string
	dir  [2]dirStat // stage-in, stage-out
}

type dirStat struct {
	bytes, n int64
	secs     float64
	ring     [rateSlots]struct{ sec, bytes int64 }
}

func (m *model) storeOf(x *executor) *storeStat {
	if x.store != nil {
		return x.store
	}
	name := x.storage
	if name == "" {
		name = unknownStorage
	}
	st, ok := m.stores[name]
	if !ok {
		st = &storeStat{name: name}
		m.stores[name] = st
	}
	x.store = st
	return st
}

func dirIndex(p uint8) int {
	if p == phaseStageOut {
		return 1
	}
	return 0
}

// countBytes adds bytes moved by executor x in phase p at receive time
// recv to the live rates.
func (m *model) countBytes(x *executor, p uint8, bytes, recv int64) {
	if bytes <= 0 || recv <= 0 {
		return
	}
	sec := recv / int64(time.Second)
	if sec <= m.newestSec-rateSlots {
		return // older than the window
	}
	d := &m.storeOf(x).dir[dirIndex(p)]
	b := &d.ring[((sec%rateSlots)+rateSlots)%rateSlots]
	if b.sec != sec {
		b.sec, b.bytes = sec, 0
	}
	b.bytes += bytes
}

// transferred counts a finished staging stage s of j in phase p.
func (m *model) transferred(j *job, p uint8, s *stageRec, recv int64) {
	d := &m.storeOf(j.exec).dir[dirIndex(p)]
	d.n++
	if s.hasBytes {
		d.bytes += s.bytes
	}
	if s.hasDur {
		d.secs += s.dur
	}
	counted := int64(0)
	if pr := j.prog; pr != nil && pr.phase == p {
		counted = pr.counted
		pr.counted = max(pr.counted, s.bytes)
	}
	if s.bytes > counted {
		m.countBytes(j.exec, p, s.bytes-counted, recv)
	}
}

func (m *model) storageRates(now time.Time) []StorageRate {
	active := make(map[*storeStat]*[2]int)
	for _, x := range m.execs {
		for j := range x.running {
			if j.phase != PhaseStageIn && j.phase != PhaseStageOut {
				continue
			}
			st := m.storeOf(x)
			a := active[st]
			if a == nil {
				a = new([2]int)
				active[st] = a
			}
			a[dirIndex(phaseCode(j.phase))]++
		}
	}
	win := int64(RateWindow / time.Second)
	end := now.Unix()
	span := float64(win)
	if m.firstRecv != 0 {
		if since := float64(now.UnixNano()-m.firstRecv) / 1e9; since < span {
			span = max(since, 1)
		}
	}
	out := make([]StorageRate, 0, 2*len(m.stores))
	for _, st := range m.stores {
		for i, dir := range [2]string{PhaseStageIn, PhaseStageOut} {
			d := &st.dir[i]
			n := 0
			if a := active[st]; a != nil {
				n = a[i]
			}
			if d.n == 0 && n == 0 && d.bytes == 0 {
				continue
			}
			var moved int64
			for _, b := range d.ring {
				if b.sec > end-win && b.sec <= end {
					moved += b.bytes
				}
			}
			out = append(out, StorageRate{
				Storage:   st.name,
				Direction: dir,
				Rate:      float64(moved) / span,
				Bytes:     d.bytes,
				Transfers: d.n,
				Time:      seconds(d.secs),
				Active:    n,
			})
		}
	}
	slices.SortFunc(out, func(a, b StorageRate) int {
		return cmp.Or(strings.Compare(a.Storage, b.Storage), strings.Compare(a.Direction, b.Direction))
	})
	return out
}

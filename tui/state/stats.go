package state

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Log-scale histogram of durations: bucket i holds [histMin·g^i,
// histMin·g^(i+1)) with g = 1.05, so the middle of a bucket is within 2.5 %
// of any value in it. 1 ms to ~11 days in 500 buckets (2 KB).
const (
	histMin     = 1e-3
	histGrowth  = 1.05
	histBuckets = 500
	// maxExecutables caps the executables with their own statistics; the
	// rest are pooled under otherExecutable.
	maxExecutables    = 1000
	otherExecutable   = "(other)"
	unknownExecutable = "(unknown)"
)

var histLogGrowth = math.Log(histGrowth)

type histogram struct {
	counts   [histBuckets]uint32
	n        int64
	sum, max float64
	min      float64
}

func (h *histogram) add(sec float64) {
	if sec < 0 || math.IsNaN(sec) || math.IsInf(sec, 0) {
		return
	}
	i := 0
	if sec >= histMin {
		i = int(math.Log(sec/histMin) / histLogGrowth)
		i = min(i, histBuckets-1)
	}
	h.counts[i]++
	if h.n == 0 || sec < h.min {
		h.min = sec
	}
	if sec > h.max {
		h.max = sec
	}
	h.n++
	h.sum += sec
}

// quantile returns the q-quantile (0 < q ≤ 1) in seconds: the middle of the
// bucket holding it, clamped to the values seen.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var cum uint64
	for i, c := range h.counts {
		cum += uint64(c)
		if cum >= rank {
			v := histMin * math.Pow(histGrowth, float64(i)+0.5)
			if i == 0 {
				v = histMin / 2
			}
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

type execStat struct {
	exec                    histogram
	count, failed           int64
	stageIn, stageOut       float64 // sums of times
	stageInN, stageOutN     int64
	inputBytes, outputBytes int64
}

// seconds converts seconds to a duration, to the nanosecond.
func seconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// tsTime converts an event timestamp (UNIX seconds) to a time, rounded to
// the microsecond: all a float64 of today's UNIX seconds holds.
func tsTime(ts float64) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(math.Round(ts * 1e6)))
}

// between is the duration from timestamp a to timestamp b, to the
// microsecond.
func between(a, b float64) time.Duration {
	return time.Duration(math.Round((b-a)*1e6)) * time.Microsecond
}

func (m *model) stat(executable string) *execStat {
	if s, ok := m.stats[executable]; ok {
		return s
	}
	if len(m.stats) >= maxExecutables {
		executable = otherExecutable
		if s, ok := m.stats[executable]; ok {
			return s
		}
	}
	s := new(execStat)
	m.stats[executable] = s
	return s
}

func (m *model) execStats() []ExecStat {
	out := make([]ExecStat, 0, len(m.stats))
	for name, s := range m.stats {
		st := ExecStat{
			Executable:  name,
			Count:       s.exec.n,
			Failed:      s.failed,
			P50:         seconds(s.exec.quantile(0.50)),
			P95:         seconds(s.exec.quantile(0.95)),
			Max:         seconds(s.exec.max),
			InputBytes:  s.inputBytes,
			OutputBytes: s.outputBytes,

			StageInTotal:   seconds(s.stageIn),
			ExecutionTotal: seconds(s.exec.sum),
			StageOutTotal:  seconds(s.stageOut),
		}
		if s.exec.n > 0 {
			st.Mean = seconds(s.exec.sum / float64(s.exec.n))
		}
		if s.stageInN > 0 {
			st.StageInMean = seconds(s.stageIn / float64(s.stageInN))
		}
		if s.stageOutN > 0 {
			st.StageOutMean = seconds(s.stageOut / float64(s.stageOutN))
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ExecStat) int { return strings.Compare(a.Executable, b.Executable) })
	return out
}

// bucket is one second of throughput in the ring; sec is its UNIX second
// (a slot whose sec is not the one asked for is empty).
type bucket struct {
	sec int64
	Bucket
}

// count returns the bucket of the second at (creating it), or nil when at
// is older than the ring holds.
func (m *model) count(atNanos int64) *Bucket {
	if atNanos <= 0 {
		return nil
	}
	sec := atNanos / int64(time.Second)
	n := int64(len(m.buckets))
	if sec <= m.newestSec-n {
		return nil
	}
	if sec > m.newestSec {
		m.newestSec = sec
	}
	b := &m.buckets[((sec%n)+n)%n]
	if b.sec != sec {
		*b = bucket{sec: sec, Bucket: Bucket{Time: time.Unix(sec, 0)}}
	}
	return &b.Bucket
}

func (m *model) bucketAt(sec int64) (Bucket, bool) {
	n := int64(len(m.buckets))
	b := m.buckets[((sec%n)+n)%n]
	if b.sec != sec || b.Time.IsZero() {
		return Bucket{Time: time.Unix(sec, 0)}, false
	}
	return b.Bucket, true
}

func (m *model) throughput(now time.Time, n int) []Bucket {
	n = min(n, len(m.buckets))
	if n <= 0 {
		return nil
	}
	end := now.Unix()
	out := make([]Bucket, n)
	for i := range n {
		out[i], _ = m.bucketAt(end - int64(n-1-i))
	}
	return out
}

// rates averages the buckets of the RateWindow up to now, over the window
// or the time since the first event when that is shorter.
func (m *model) rates(now time.Time) Rates {
	var r Rates
	if m.firstRecv == 0 {
		return r
	}
	win := int64(RateWindow / time.Second)
	end := now.Unix()
	span := float64(win)
	if since := float64(now.UnixNano()-m.firstRecv) / 1e9; since < span {
		span = max(since, 1)
	}
	for s := end - win + 1; s <= end; s++ {
		b, ok := m.bucketAt(s)
		if !ok {
			continue
		}
		r.Events += float64(b.Events)
		r.Started += float64(b.Started)
		r.Finished += float64(b.Finished)
		r.Failed += float64(b.Failed)
		r.StageIn += float64(b.StageIn)
		r.StageInBytes += float64(b.StageInBytes)
		r.Execution += float64(b.Execution)
		r.StageOut += float64(b.StageOut)
		r.StageOutBytes += float64(b.StageOutBytes)
	}
	r.Events /= span
	r.Started /= span
	r.Finished /= span
	r.Failed /= span
	r.StageIn /= span
	r.StageInBytes /= span
	r.Execution /= span
	r.StageOut /= span
	r.StageOutBytes /= span
	return r
}

package submit

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted, an
// ascending slice, by the nearest-rank method: the smallest value such that
// at least p percent of the values are less than or equal to it. It returns
// 0 for an empty slice; p <= 0 gives the smallest value.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Latency summarises the latencies of the replies, in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func summariseLatency(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Latency{
		Min:  ms(lat[0]),
		Mean: ms(sum / time.Duration(len(lat))),
		P50:  ms(Percentile(lat, 50)),
		P90:  ms(Percentile(lat, 90)),
		P99:  ms(Percentile(lat, 99)),
		Max:  ms(lat[len(lat)-1]),
	}
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3 // milliseconds, microsecond precision
}

// Summary is the result of a load run (printed with --json as it is).
type Summary struct {
	Jobs      int `json:"jobs"`      // requested (--count)
	Inflight  int `json:"inflight"`  // --inflight
	Published int `json:"published"` // sent to the queue
	Replies   int `json:"replies"`   // first replies to published jobs
	// Missing: published jobs without a reply within --timeout-reply of
	// their publication (or when the run was cut short).
	Missing    int `json:"missing"`
	Malformed  int `json:"malformed"`  // first replies failing CheckReply
	Duplicates int `json:"duplicates"` // further replies to an answered job
	Late       int `json:"late"`       // replies to a job already counted missing
	Unknown    int `json:"unknown"`    // replies with a correlation id never sent
	// Failed counts well-formed replies with a non-zero exit status.
	Failed int `json:"failed"`
	// ExitStatuses counts well-formed replies by exit status.
	ExitStatuses map[string]int `json:"exit_statuses"`
	// ElapsedSeconds: from the first publication to the last first reply.
	ElapsedSeconds float64 `json:"elapsed_s"`
	JobsPerSecond  float64 `json:"jobs_per_s"`
	LatencyMS      Latency `json:"latency_ms"`
	// Problems describes the first problems met (at most maxProblems).
	Problems []string `json:"problems,omitempty"`
	OK       bool     `json:"ok"`
}

const maxProblems = 20

func (s *Summary) finish() {
	s.Missing = s.Published - s.Replies
	s.OK = s.Published == s.Jobs && s.Missing == 0 && s.Malformed == 0 &&
		s.Duplicates == 0 && s.Late == 0 && s.Unknown == 0
}

// WriteText prints the summary for people.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "jobs         %d published of %d (inflight %d), %d replies in %.3fs: %.1f jobs/s\n",
		s.Published, s.Jobs, s.Inflight, s.Replies, s.ElapsedSeconds, s.JobsPerSecond)
	l := s.LatencyMS
	fmt.Fprintf(&b, "latency ms   min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n",
		l.Min, l.P50, l.P90, l.P99, l.Max, l.Mean)
	b.WriteString("exit status ")
	keys := make([]string, 0, len(s.ExitStatuses))
	for k := range s.ExitStatuses {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	if len(keys) == 0 {
		b.WriteString(" none")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, " %s: %d", k, s.ExitStatuses[k])
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "problems     missing %d  malformed %d  duplicates %d  late %d  unknown %d\n",
		s.Missing, s.Malformed, s.Duplicates, s.Late, s.Unknown)
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	verdict := "OK"
	if !s.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "result       %s\n", verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the summary as one JSON object and a newline.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

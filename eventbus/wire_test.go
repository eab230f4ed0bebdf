package eventbus

// The contract's examples held to the types. The reply and metrics examples
// are read from docs/wire.md itself; the events, which the document describes
// by a table rather than by examples, have one golden body per type (and
// per variant) in testdata/events, tied to that table both ways: every field
// of a golden is one the document names for its type, and every field the
// table names appears in a golden of that type. Every example must decode
// into the eventbus types with no unknown field and encode back to the same
// JSON (compared as values, not as text).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const wireDoc = "../docs/wire.md"

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(wireDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection returns the section of doc whose heading starts with heading
// ("## 2."), up to the next section.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading)
	if i < 0 {
		t.Fatalf("%s: no section %q", wireDoc, heading)
	}
	s := doc[i+1:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// jsonBlocks returns the ```json blocks of a section.
func jsonBlocks(section string) []string {
	var out []string
	for _, part := range strings.Split(section, "```json\n")[1:] {
		if end := strings.Index(part, "```"); end >= 0 {
			out = append(out, part[:end])
		}
	}
	return out
}

// oneJSONBlock is the only ```json block of a section.
func oneJSONBlock(t *testing.T, doc, heading string) []byte {
	t.Helper()
	blocks := jsonBlocks(docSection(t, doc, heading))
	if len(blocks) != 1 {
		t.Fatalf("%s section %q: %d json blocks, want 1", wireDoc, heading, len(blocks))
	}
	return []byte(blocks[0])
}

// strictUnmarshal decodes one JSON value into v, refusing fields v does not
// have.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the value")
	}
	return nil
}

func jsonValue(t *testing.T, name string, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, data)
	}
	return v
}

// roundTrip decodes data into a T strictly, encodes it again and checks
// the result is the same JSON value.
func roundTrip[T any](t *testing.T, name string, data []byte) *T {
	t.Helper()
	v := new(T)
	if err := strictUnmarshal(data, v); err != nil {
		t.Fatalf("%s: decode into %T: %v\n%s", name, *v, err, data)
	}
	back, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: encode: %v", name, err)
	}
	if want, got := jsonValue(t, name, data), jsonValue(t, name, back); !reflect.DeepEqual(want, got) {
		t.Errorf("%s: %T does not encode back to the example\n example: %s\n encoded: %s", name, *v, compact(data), back)
	}
	return v
}

func compact(data []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, data) != nil {
		return string(data)
	}
	return b.String()
}

// normalizedDoc is doc with its line breaks and runs of spaces made single
// spaces, for looking up phrases that the document wraps.
func normalizedDoc(doc string) string { return strings.Join(strings.Fields(doc), " ") }

// mustSay fails unless the document still says phrase (which the test
// relies on).
func mustSay(t *testing.T, doc, phrase string) {
	t.Helper()
	if !strings.Contains(normalizedDoc(doc), normalizedDoc(phrase)) {
		t.Errorf("%s no longer says %q: update this test with it", wireDoc, phrase)
	}
}

func TestDocMetricsExample(t *testing.T) {
	doc := readDoc(t)
	m := roundTrip[Metrics](t, "wire.md §4", oneJSONBlock(t, doc, "## 4."))
	// The durations are those of the timestamps.
	ts := m.Timestamps
	for _, c := range []struct {
		name          string
		d, start, end float64
	}{
		{"stage_in", m.StageIn, ts.StageInStarted, ts.StageInFinished},
		{"execution", m.Execution, ts.ExecutionStarted, ts.ExecutionFinished},
		{"stage_out", m.StageOut, ts.StageOutStarted, ts.StageOutFinished},
	} {
		if math.Abs(c.end-c.start-c.d) > 1e-6 {
			t.Errorf("wire.md §4: %s = %v but its timestamps are %v apart", c.name, c.d, c.end-c.start)
		}
	}
	if !(ts.JobStarted <= ts.StageInStarted && ts.StageOutFinished <= ts.JobFinished) {
		t.Errorf("wire.md §4: timestamps out of order: %+v", ts)
	}
}

// metricsPlaceholder is what the reply example of wire.md §2 holds where
// the metrics object of §4 goes.
var metricsPlaceholder = regexp.MustCompile(`\{\s*"\.\.\.":\s*"see section 4"\s*\}`)

func TestDocReplyExample(t *testing.T) {
	doc := readDoc(t)
	reply := oneJSONBlock(t, doc, "## 2.")
	if !metricsPlaceholder.Match(reply) {
		t.Logf("wire.md §2: the reply example has no metrics placeholder any more: used as it is")
	}
	reply = metricsPlaceholder.ReplaceAll(reply, oneJSONBlock(t, doc, "## 4."))
	r := roundTrip[Reply](t, "wire.md §2", reply)
	checkReply(t, "wire.md §2", reply, r)
	if r.Metrics == nil {
		t.Errorf("wire.md §2: the reply example has no metrics")
	}
}

func TestReplyGoldens(t *testing.T) {
	doc := readDoc(t)
	for _, phrase := range []string{"`-1`: the command could not be started", "`-2`: the job failed outside the command",
		"`-3`: the command ran past its timeout"} {
		mustSay(t, doc, phrase)
	}
	if ExitNotStarted != -1 || ExitJobError != -2 || ExitTimeout != -3 {
		t.Errorf("exit statuses %d %d %d differ from wire.md §2", ExitNotStarted, ExitJobError, ExitTimeout)
	}
	files, _ := filepath.Glob("testdata/replies/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata/replies/*.json")
	}
	seen := map[int]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := roundTrip[Reply](t, f, data)
		checkReply(t, f, data, r)
		seen[r.ExitStatus] = true
	}
	for _, status := range []int{ExitNotStarted, ExitJobError, ExitTimeout} {
		if !seen[status] {
			t.Errorf("no reply golden with exit_status %d", status)
		}
	}
}

// checkReply holds a reply to the rules of wire.md §2: exit_status a JSON
// integer, 0..255 or one of the executor's own; exceptions an array, empty
// on success and never empty otherwise.
func checkReply(t *testing.T, name string, data []byte, r *Reply) {
	t.Helper()
	var raw struct {
		ExitStatus json.RawMessage `json:"exit_status"`
		Exceptions json.RawMessage `json:"exceptions"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^-?[0-9]+$`).Match(raw.ExitStatus) {
		t.Errorf("%s: exit_status %s is not a JSON integer", name, raw.ExitStatus)
	}
	if len(raw.Exceptions) == 0 || raw.Exceptions[0] != '[' {
		t.Errorf("%s: exceptions %q is not an array", name, raw.Exceptions)
	}
	switch s := r.ExitStatus; {
	case s >= 0 && s <= 255, s == ExitNotStarted, s == ExitJobError, s == ExitTimeout:
	default:
		t.Errorf("%s: exit_status %d is not one of wire.md §2", name, s)
	}
	if (r.ExitStatus == 0) != (len(r.Exceptions) == 0) {
		t.Errorf("%s: exit_status %d with exceptions %q", name, r.ExitStatus, r.Exceptions)
	}
}

// tableRow is a row of the events table of wire.md §3.
type tableRow struct {
	key, typ string
	fields   []string
}

var backticked = regexp.MustCompile("`([^`]+)`")

func eventTable(t *testing.T, doc string) map[string]tableRow {
	t.Helper()
	rows := map[string]tableRow{}
	for _, line := range strings.Split(docSection(t, doc, "## 3."), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		var r tableRow
		r.key = strings.Trim(strings.TrimSpace(cells[1]), "`")
		r.typ = strings.Trim(strings.TrimSpace(cells[2]), "`")
		for _, m := range backticked.FindAllStringSubmatch(cells[3], -1) {
			// A name, or a name with its value ("`draining: true`").
			name, _, _ := strings.Cut(m[1], ":")
			if !slices.Contains(r.fields, name) {
				r.fields = append(r.fields, name)
			}
		}
		rows[r.typ] = r
	}
	if len(rows) == 0 {
		t.Fatalf("%s §3: no event table", wireDoc)
	}
	return rows
}

var allTypes = []string{
	TypeExecutorReady, TypeExecutorHeartbeat, TypeExecutorDraining, TypeExecutorStopped,
	TypeJobStarted, TypeStageInStarted, TypeStageInFinished, TypeExecStarted, TypeExecFinished,
	TypeStageOutStarted, TypeStageOutFinished, TypeJobFinished, TypeJobProgress,
}

// documented returns, for each event type, the fields wire.md gives it:
// the common ones, the job ones, the table's, and those its other sections
// add (each checked to be still said).
func documented(t *testing.T, doc string) (rows map[string]tableRow, fields map[string][]string) {
	t.Helper()
	rows = eventTable(t, doc)
	mustSay(t, doc, "`job.{id}.progress` (type `job.progress`)")
	rows[TypeJobProgress] = tableRow{key: "job.{id}.progress", typ: TypeJobProgress,
		fields: []string{"phase", "elapsed", "bytes", "bytes_total", "rss", "cpu"}}
	mustSay(t, doc, "`phase` (`stage-in`, `execution`, `stage-out`), `elapsed` (seconds in the phase), for "+
		"staging `bytes` (moved so far, including the part of the file being downloaded) and for "+
		"stage-out `bytes_total`, for execution `rss` (bytes) and `cpu` (seconds)")

	mustSay(t, doc, "at least `executor` (the executor's UUID, new at every start), `timestamp`")
	mustSay(t, doc, "and `type` (the routing key without the job id part)")
	mustSay(t, doc, "Every job event also has `id` and `job`")
	mustSay(t, doc, "and `thread` (the executor-local worker slot")
	additions := map[string][]string{
		TypeExecutorHeartbeat: {"interval", "consumer_timeout", "hostname", "storage", "version", "queue", "broker"},
		// Not in wire.md: the executor sends the job's executable in its
		// progress events, and the monitor reads it (a job first seen
		// through a progress event).
		TypeJobProgress: {"executable"},
	}
	mustSay(t, doc, "Heartbeats also carry `interval` (seconds)")
	mustSay(t, doc, "Heartbeats carry `consumer_timeout`")
	mustSay(t, doc, "Heartbeats repeat `hostname`, `storage`, `version` and `queue` of `executor.ready`")
	mustSay(t, doc, "Heartbeats carry `broker` as `executor.ready` does")

	fields = map[string][]string{}
	for typ, r := range rows {
		f := []string{"executor", "timestamp", "type"}
		if strings.HasPrefix(typ, "job.") {
			f = append(f, "id", "job", "thread")
		}
		f = append(f, r.fields...)
		f = append(f, additions[typ]...)
		fields[typ] = f
	}
	return rows, fields
}

func TestEventTableHasEveryType(t *testing.T) {
	rows, _ := documented(t, readDoc(t))
	got := slices.Sorted(maps.Keys(rows))
	want := slices.Sorted(slices.Values(allTypes))
	if !slices.Equal(got, want) {
		t.Errorf("wire.md event types %q, eventbus has %q", got, want)
	}
	for typ, r := range rows {
		want := typ
		if rest, ok := strings.CutPrefix(typ, "job."); ok {
			want = "job.{id}." + rest
		}
		if r.key != want {
			t.Errorf("wire.md §3: type %s has routing key %s, want %s", typ, r.key, want)
		}
	}
}

// golden is a file of testdata/events.
type golden struct {
	RoutingKey string          `json:"routing_key"`
	Body       json.RawMessage `json:"body"`
}

func TestEventGoldens(t *testing.T) {
	doc := readDoc(t)
	rows, fields := documented(t, doc)
	runningFields := []string{"id", "thread", "phase", "since", "executable", "deadline"}
	mustSay(t, doc, "`running` in a heartbeat lists the jobs in progress: `[{\"id\", \"thread\", \"phase\", \"since\", \"executable\"}]`")
	mustSay(t, doc, "each running job's `deadline`")

	files, _ := filepath.Glob("testdata/events/*.json")
	seen := map[string]map[string]bool{} // type → fields seen in its goldens
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := strictUnmarshal(data, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ev := roundTrip[Event](t, f, g.Body)
		if got := ev.RoutingKey(); got != g.RoutingKey {
			t.Errorf("%s: RoutingKey() = %q, want %q", f, got, g.RoutingKey)
		}
		row, ok := rows[ev.Type]
		if !ok {
			t.Errorf("%s: type %q is not in wire.md", f, ev.Type)
			continue
		}
		if want := strings.Replace(row.key, "{id}", routingSafe(ev.ID), 1); want != g.RoutingKey {
			t.Errorf("%s: routing key %q, wire.md says %q", f, g.RoutingKey, want)
		}
		if strings.HasPrefix(ev.Type, "job.") {
			if got := JobRoutingKey(ev.ID, ev.Type); got != g.RoutingKey {
				t.Errorf("%s: JobRoutingKey = %q, want %q", f, got, g.RoutingKey)
			}
			if ev.ID == "" || ev.Job != ev.ID || ev.Thread < 1 {
				t.Errorf("%s: a job event needs id = job and a thread from 1: %q %q %d", f, ev.ID, ev.Job, ev.Thread)
			}
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(g.Body, &body); err != nil {
			t.Fatal(err)
		}
		if seen[ev.Type] == nil {
			seen[ev.Type] = map[string]bool{}
		}
		for k := range body {
			seen[ev.Type][k] = true
			if !slices.Contains(fields[ev.Type], k) {
				t.Errorf("%s: field %q is not one wire.md gives %s", f, k, ev.Type)
			}
		}
		if ev.Running != nil {
			var running []map[string]json.RawMessage
			if err := json.Unmarshal(body["running"], &running); err != nil {
				t.Fatal(err)
			}
			for _, r := range running {
				for k := range r {
					if !slices.Contains(runningFields, k) {
						t.Errorf("%s: running field %q is not in wire.md", f, k)
					}
				}
			}
		}
	}
	for _, typ := range allTypes {
		if seen[typ] == nil {
			t.Errorf("no golden event of type %s in testdata/events", typ)
			continue
		}
		for _, k := range fields[typ] {
			if !seen[typ][k] {
				t.Errorf("no golden %s event has the field %q wire.md gives it", typ, k)
			}
		}
	}
}

func TestRoutingKeys(t *testing.T) {
	for _, c := range []struct {
		ev   Event
		want string
	}{
		{Event{Type: TypeExecutorReady}, "executor.ready"},
		{Event{Type: TypeExecutorHeartbeat, ID: "ignored"}, "executor.heartbeat"},
		{Event{Type: TypeExecutorDraining}, "executor.draining"},
		{Event{Type: TypeExecutorStopped}, "executor.stopped"},
		{Event{Type: TypeJobStarted, ID: "6b1f0c2a-77d4"}, "job.6b1f0c2a-77d4.started"},
		{Event{Type: TypeStageInStarted, ID: "a"}, "job.a.stage-in.started"},
		{Event{Type: TypeStageInFinished, ID: "a"}, "job.a.stage-in.finished"},
		{Event{Type: TypeExecStarted, ID: "a"}, "job.a.execution.started"},
		{Event{Type: TypeExecFinished, ID: "a"}, "job.a.execution.finished"},
		{Event{Type: TypeStageOutStarted, ID: "a"}, "job.a.stage-out.started"},
		{Event{Type: TypeStageOutFinished, ID: "a"}, "job.a.stage-out.finished"},
		{Event{Type: TypeJobFinished, ID: "a"}, "job.a.finished"},
		{Event{Type: TypeJobProgress, ID: "a"}, "job.a.progress"},
		// '.', '*' and '#' would change the key's words or be wildcards.
		{Event{Type: TypeJobFinished, ID: "wf.1*x#y"}, "job.wf_1_x_y.finished"},
		{Event{Type: TypeJobStarted, ID: "..."}, "job.___.started"},
		{Event{Type: TypeJobStarted, ID: "ünï-cødé"}, "job.ünï-cødé.started"},
	} {
		if got := c.ev.RoutingKey(); got != c.want {
			t.Errorf("%s of %q: RoutingKey() = %q, want %q", c.ev.Type, c.ev.ID, got, c.want)
		}
		if strings.HasPrefix(c.ev.Type, "job.") {
			if got := JobRoutingKey(c.ev.ID, c.ev.Type); got != c.want {
				t.Errorf("JobRoutingKey(%q, %q) = %q, want %q", c.ev.ID, c.ev.Type, got, c.want)
			}
		}
	}
	// The id itself is not changed, only the key.
	ev := Event{Type: TypeJobStarted, ID: "a.b"}
	_ = ev.RoutingKey()
	if ev.ID != "a.b" {
		t.Errorf("RoutingKey changed the id to %q", ev.ID)
	}
}

func TestTimestampRoundTrip(t *testing.T) {
	for _, ts := range []float64{0, 1700000000.25, 1700000003.96} {
		if got := Timestamp(FromTimestamp(ts)); math.Abs(got-ts) > 1e-6 {
			t.Errorf("Timestamp(FromTimestamp(%v)) = %v", ts, got)
		}
	}
}

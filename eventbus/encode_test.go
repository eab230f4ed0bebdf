package eventbus

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fill sets every field of the value v points to (recursively, through
// pointers and slices) to a non-zero value derived from seed, so that a
// field the hand-written encoder forgets shows as a difference from
// json.Marshal.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString([]string{"plain", "q\"b\\s<t>&\u2028\u2029\n\t\x01\x7f", "é\xffz日本", ""}[seed%4] + "x")
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64([]int{7, -2, 1 << 40, 255}[seed%4]))
	case reflect.Float64:
		v.SetFloat([]float64{1.5, 1764111563.123456, 1e-7, 3e21, -0.25, 123456789}[seed%6])
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed+i+1)
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), seed+i)
		}
	default:
		panic("fill: unsupported kind " + v.Kind().String() + " of " + v.Type().String())
	}
}

func sameAsMarshal[T any](t *testing.T, name string, v *T, appendJSON func([]byte) ([]byte, error)) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, gerr := appendJSON([]byte("prefix:"))
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%s: json.Marshal error %v, AppendJSON error %v", name, werr, gerr)
	}
	if werr != nil {
		return
	}
	if !strings.HasPrefix(string(got), "prefix:") {
		t.Fatalf("%s: AppendJSON dropped what the buffer held: %q", name, got)
	}
	if got := string(got[len("prefix:"):]); got != string(want) {
		t.Errorf("%s: AppendJSON differs from json.Marshal\n got: %s\nwant: %s", name, got, want)
	}
}

// TestAppendJSONEveryField sets every field at once (several seeds), then
// each field alone (the others at their zero value: omitempty).
func TestAppendJSONEveryField(t *testing.T) {
	if !encoderCurrent {
		t.Errorf("a field was added to %v without its line in AppendJSON and in encodedFields (encode.go): "+
			"AppendJSON falls back to json.Marshal until then", reflect.TypeFor[Event]())
	}
	saved := encoderCurrent
	encoderCurrent = true // the hand-written encoder is what is tested here
	defer func() { encoderCurrent = saved }()
	for seed := range 6 {
		var e Event
		fill(reflect.ValueOf(&e).Elem(), seed)
		sameAsMarshal(t, "event, every field", &e, e.AppendJSON)
		var r Reply
		fill(reflect.ValueOf(&r).Elem(), seed)
		sameAsMarshal(t, "reply, every field", &r, r.AppendJSON)
	}
	et := reflect.TypeFor[Event]()
	for i := range et.NumField() {
		var e Event
		fill(reflect.ValueOf(&e).Elem().Field(i), i)
		sameAsMarshal(t, "event field "+et.Field(i).Name, &e, e.AppendJSON)
	}
	rt := reflect.TypeFor[Reply]()
	for i := range rt.NumField() {
		var r Reply
		fill(reflect.ValueOf(&r).Elem().Field(i), i)
		sameAsMarshal(t, "reply field "+rt.Field(i).Name, &r, r.AppendJSON)
	}
	var zero Event
	sameAsMarshal(t, "zero event", &zero, zero.AppendJSON)
	var zr Reply
	sameAsMarshal(t, "zero reply", &zr, zr.AppendJSON)
}

// TestAppendJSONExecutorEvents: the events as the executor builds them.
func TestAppendJSONExecutorEvents(t *testing.T) {
	m := &Metrics{Executor: "e1", Thread: 2, Hostname: "node-1",
		Timestamps: Timestamps{JobStarted: 1764111563.5, ExecutionStarted: 1764111563.501, ExecutionFinished: 1764111563.75, JobFinished: 1764111563.8},
		Execution:  0.249, CPUUser: 0.001, MaxRSS: 1 << 20}
	empty := []RunningJob{}
	events := []*Event{
		{Executor: "e1", Timestamp: 1764111563.5, Type: TypeJobStarted, ID: "j", Job: "j", Thread: 1, Executable: "/bin/true", Redelivered: Ptr(false)},
		{Executor: "e1", Timestamp: 1764111563.5, Type: TypeExecFinished, ID: "j", Job: "j", Thread: 1, ExitStatus: Ptr(0), Time: Ptr(0.0), Metrics: m},
		{Executor: "e1", Timestamp: 1764111563.5, Type: TypeJobFinished, ExitStatus: Ptr(3), Metrics: m, Exceptions: []string{"command exited with status 3"}, StderrTail: "no <such> file\n"},
		{Executor: "e1", Timestamp: 1764111563.5, Type: TypeExecutorHeartbeat, Busy: Ptr(0), Running: &empty, Interval: 5, ConsumerTimeout: 1800},
		{Executor: "e1", Timestamp: 1764111563.5, Type: TypeExecutorDraining, Running: new([]RunningJob)},
		{Executor: "e1", Timestamp: 1764111563.5, Type: TypeJobProgress, Phase: PhaseStageIn, Elapsed: Ptr(5.000001), Bytes: Ptr(int64(0)), BytesTotal: Ptr(int64(-1))},
	}
	for _, e := range events {
		sameAsMarshal(t, e.Type, e, e.AppendJSON)
	}
	r := &Reply{ExitStatus: -2, Stderr: "bad\x00byte", Exceptions: []string{}, Metrics: m}
	sameAsMarshal(t, "reply", r, r.AppendJSON)
}

func TestAppendJSONRefusesNaN(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := &Event{Elapsed: Ptr(f)}
		_, err := e.AppendJSON(nil)
		var uv *json.UnsupportedValueError
		if !errors.As(err, &uv) {
			t.Errorf("elapsed %v: error %v, want a *json.UnsupportedValueError as json.Marshal gives", f, err)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("a<b>&\"c", "\xff\u2028", 1.5, int64(3))
	f.Add("", "日本\x00", 1e-7, int64(-1))
	f.Add("x", "y", 1e21, int64(0))
	f.Fuzz(func(t *testing.T, s1, s2 string, fl float64, n int64) {
		e := &Event{Executor: s1, Timestamp: fl, Type: s2, ID: s1, Thread: n, Elapsed: &fl, Bytes: &n,
			Exceptions: []string{s1, s2}, StderrTail: s2,
			Metrics: &Metrics{Hostname: s2, StageIn: fl, Timestamps: Timestamps{StageInStarted: fl}}}
		sameAsMarshal(t, "fuzzed event", e, e.AppendJSON)
		r := &Reply{ExitStatus: int(n), Stdout: s1, Stderr: s2}
		sameAsMarshal(t, "fuzzed reply", r, r.AppendJSON)
	})
}

func BenchmarkEncodeJobFinished(b *testing.B) {
	m := &Metrics{Executor: "3f1c2d4e-0000-4000-8000-000000000000", Thread: 2, Hostname: "node-1",
		Timestamps: Timestamps{JobStarted: 1764111563.5, ExecutionStarted: 1764111563.501, ExecutionFinished: 1764111563.75, JobFinished: 1764111563.8},
		Execution:  0.249, CPUUser: 0.001, MaxRSS: 1 << 20}
	e := &Event{Executor: m.Executor, Timestamp: 1764111563.8, Type: TypeJobFinished, ID: "5b0f7c1e-2a34-4c1d-9a7e-0d3b2f6c8e91",
		Job: "5b0f7c1e-2a34-4c1d-9a7e-0d3b2f6c8e91", Thread: 2, Executable: "/bin/true", ExitStatus: Ptr(0), Metrics: m}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bp := GetBuffer()
			var err error
			if *bp, err = e.AppendJSON(*bp); err != nil {
				b.Fatal(err)
			}
			PutBuffer(bp)
		}
	})
}

// TestAppendJSONGoldens: the wire contract's golden events (testdata/events,
// when present) decoded and encoded again by AppendJSON give the same JSON
// as json.Marshal.
func TestAppendJSONGoldens(t *testing.T) {
	files, _ := filepath.Glob("testdata/events/*.json")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e Event
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sameAsMarshal(t, f, &e, e.AppendJSON)
	}
}

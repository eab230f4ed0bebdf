package state

// The event schema is written twice: by the executor (eventbus.Event,
// RunningJob, Metrics, Timestamps, what is sent) and by the monitor
// (wireEvent, wireRunning, wireMetrics, what is read, leniently), and the
// monitor's decoder reads the second. These tests tie them together: a
// field added to, renamed in or retyped in an eventbus type that the monitor
// does not read the same way fails them.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// monitorOnly are the fields the monitor reads that no eventbus type has,
// with the reason (type.json-name).
var monitorOnly = map[string]string{
	"wireRunning.job": "a running job named by `job` rather than `id` (executors other than this one)",
}

var rawMessage = reflect.TypeFor[json.RawMessage]()

// jsonFields lists the JSON members of a struct type by name.
func jsonFields(t *testing.T, typ reflect.Type) map[string]reflect.StructField {
	t.Helper()
	out := map[string]reflect.StructField{}
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			t.Fatalf("%s.%s: embedded fields are not handled by this test", typ, f.Name)
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// schemaDiffs compares what the executor sends (sent) with what the monitor
// reads (read), member by member and recursively: every member of sent must
// be read under the same name with a compatible type, and every member read
// must be sent (or be in monitorOnly).
func schemaDiffs(t *testing.T, sent, read reflect.Type, path string) []string {
	t.Helper()
	if read == rawMessage {
		return nil // kept raw, read leniently later
	}
	var diffs []string
	if sent.Kind() == reflect.Pointer {
		// The executor sends a pointer where 0, false or an empty list
		// means something: the monitor must tell it from absent.
		if read.Kind() != reflect.Pointer && read.Kind() != reflect.Slice {
			return []string{fmt.Sprintf("%s: sent as %s (absent ≠ zero), read as %s, which cannot tell", path, sent, read)}
		}
		sent = sent.Elem()
	}
	if read.Kind() == reflect.Pointer {
		read = read.Elem()
	}
	if read == rawMessage {
		return nil
	}
	mismatch := func() []string {
		return []string{fmt.Sprintf("%s: sent as %s, read as %s", path, sent, read)}
	}
	switch sent.Kind() {
	case reflect.String, reflect.Bool:
		if read.Kind() != sent.Kind() {
			return mismatch()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch read.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if read.Bits() < sent.Bits() {
				return mismatch()
			}
		case reflect.Float64:
		default:
			return mismatch()
		}
	case reflect.Float64:
		if read.Kind() != reflect.Float64 {
			return mismatch()
		}
	case reflect.Slice:
		if read.Kind() != reflect.Slice {
			return mismatch()
		}
		return schemaDiffs(t, sent.Elem(), read.Elem(), path+"[]")
	case reflect.Struct:
		if read.Kind() != reflect.Struct {
			return mismatch()
		}
		sf, rf := jsonFields(t, sent), jsonFields(t, read)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range sf {
				if !yield(k) {
					return
				}
			}
		}) {
			r, ok := rf[name]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: sent (%s.%s) but not read by %s", path, name, sent, sf[name].Name, read))
				continue
			}
			diffs = append(diffs, schemaDiffs(t, sf[name].Type, r.Type, path+"."+name)...)
		}
		for name, f := range rf {
			if _, ok := sf[name]; !ok {
				if _, ok := monitorOnly[read.Name()+"."+name]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s.%s: read (%s.%s) but %s has no such member", path, name, read, f.Name, sent))
				}
			}
		}
	default:
		return []string{fmt.Sprintf("%s: %s not handled by this test", path, sent)}
	}
	return diffs
}

func TestSchemaMonitorReadsEveryEventField(t *testing.T) {
	for _, c := range []struct {
		sent, read reflect.Type
	}{
		{reflect.TypeFor[eventbus.Event](), reflect.TypeFor[wireEvent]()},
		{reflect.TypeFor[eventbus.RunningJob](), reflect.TypeFor[wireRunning]()},
		{reflect.TypeFor[eventbus.Metrics](), reflect.TypeFor[wireMetrics]()},
		{reflect.TypeFor[eventbus.Timestamps](), fieldType[wireMetrics]("Timestamps")},
	} {
		for _, d := range schemaDiffs(t, c.sent, c.read, c.sent.Name()) {
			t.Error(d)
		}
	}
	for k := range monitorOnly {
		typ, name, _ := strings.Cut(k, ".")
		found := false
		for _, rt := range []reflect.Type{reflect.TypeFor[wireEvent](), reflect.TypeFor[wireRunning](), reflect.TypeFor[wireMetrics]()} {
			if _, ok := jsonFields(t, rt)[name]; ok && rt.Name() == typ {
				found = true
			}
		}
		if !found {
			t.Errorf("monitorOnly %s: no such field", k)
		}
	}
}

// TestSchemaDiffsCatch makes sure the comparison above is not vacuous.
func TestSchemaDiffsCatch(t *testing.T) {
	type sent struct {
		A string `json:"a"`
		B *int   `json:"b,omitempty"`
		C int64  `json:"c"`
		D []struct {
			E float64 `json:"e"`
		} `json:"d"`
		New string `json:"new,omitempty"`
	}
	type read struct {
		A int   `json:"a"`
		B int   `json:"b"`
		C int32 `json:"c"`
		D []struct {
			E int64 `json:"e"`
		} `json:"d"`
		Old string `json:"old"`
	}
	diffs := schemaDiffs(t, reflect.TypeFor[sent](), reflect.TypeFor[read](), "x")
	for _, want := range []string{"x.a:", "x.b:", "x.c:", "x.d[].e:", "x.new:", "x.old:"} {
		if !slices.ContainsFunc(diffs, func(d string) bool { return strings.HasPrefix(d, want) }) {
			t.Errorf("no difference found at %s; found %q", want, diffs)
		}
	}
}

// fill sets every field of v, recursively, to a value that is not zero and
// differs from the others (lists get two elements).
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + strconv.Itoa(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	default:
		panic("fill: " + v.Type().String())
	}
}

// zeroFields lists the exported fields of v that are zero, recursively
// (the fields in monitorOnly aside).
func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Type() == rawMessage {
			return nil
		}
		var out []string
		for i := range v.Len() {
			out = append(out, zeroFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || monitorOnly[v.Type().Name()+"."+name] != "" {
				continue
			}
			out = append(out, zeroFields(v.Field(i), path+"."+name)...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// withoutMonitorOnly drops from a decoded wireEvent's JSON the members the
// executor does not send.
func withoutMonitorOnly(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if running, ok := m["running"].([]any); ok {
		for _, r := range running {
			delete(r.(map[string]any), "job")
		}
	}
}

// TestSchemaDecodeReadsEveryField sends an event of every type with every
// field of eventbus.Event set (to distinct values), decodes it as the model
// does, and checks every field arrived, each with its value.
func TestSchemaDecodeReadsEveryField(t *testing.T) {
	for _, typ := range []string{
		eventbus.TypeExecutorReady, eventbus.TypeExecutorHeartbeat, eventbus.TypeExecutorDraining,
		eventbus.TypeExecutorStopped,
		eventbus.TypeJobStarted, eventbus.TypeStageInStarted, eventbus.TypeStageInFinished,
		eventbus.TypeExecStarted, eventbus.TypeExecFinished, eventbus.TypeStageOutStarted,
		eventbus.TypeStageOutFinished, eventbus.TypeJobFinished, eventbus.TypeJobProgress,
	} {
		var sent eventbus.Event
		n := 0
		fill(reflect.ValueOf(&sent).Elem(), &n)
		sent.Type = typ
		if z := zeroFields(reflect.ValueOf(sent), "Event"); len(z) != 0 {
			t.Fatalf("fill left %q zero", z)
		}
		body, err := json.Marshal(&sent)
		if err != nil {
			t.Fatal(err)
		}

		var got wireEvent
		malformed, invalid := decode(body, &got, map[string]string{})
		if malformed != nil || invalid != nil {
			t.Fatalf("%s: decode: %v %v\n%s", typ, malformed, invalid, body)
		}
		if z := zeroFields(reflect.ValueOf(got), "wireEvent"); len(z) != 0 {
			t.Errorf("%s: the monitor did not read %q\n%s", typ, z, body)
		}
		// Every value as sent: the decoded event encodes back to the body.
		var want, back any
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(normalized(t, &got)), &back); err != nil {
			t.Fatal(err)
		}
		withoutMonitorOnly(back)
		if d := valueDiffs(want, back, ""); len(d) != 0 {
			t.Errorf("%s: the monitor did not read as sent: %q\n sent %s\n read %s", typ, d, body, normalized(t, &got))
		}
		// And the same as encoding/json reads into the monitor's types.
		var std wireEvent
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatal(err)
		}
		if g, s := normalized(t, &got), normalized(t, &std); g != s {
			t.Errorf("%s: decode and encoding/json differ\n decode        %s\n encoding/json %s", typ, g, s)
		}
		if t.Failed() {
			return // decode does not depend on the type: the others fail alike
		}
	}
}

func fieldType[T any](name string) reflect.Type {
	f, ok := reflect.TypeFor[T]().FieldByName(name)
	if !ok {
		panic(name)
	}
	return f.Type
}

// valueDiffs lists the paths where two decoded JSON values differ.
func valueDiffs(a, b any, path string) []string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range x {
			if w, ok := y[k]; !ok {
				out = append(out, path+"."+k+" (missing)")
			} else {
				out = append(out, valueDiffs(v, w, path+"."+k)...)
			}
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				out = append(out, path+"."+k+" (extra)")
			}
		}
		slices.Sort(out)
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return []string{path}
		}
		var out []string
		for i := range x {
			out = append(out, valueDiffs(x[i], y[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if !reflect.DeepEqual(a, b) {
		return []string{path}
	}
	return nil
}

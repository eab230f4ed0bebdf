package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// decodeStd is what decode does, done by encoding/json alone: the
// reference decode is held to.
func decodeStd(body []byte, ev *wireEvent) (malformed, invalid error) {
	*ev = wireEvent{}
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return errors.New("body is not a JSON object"), nil
	}
	err := json.Unmarshal(b, ev)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return nil, err
	}
	return err, nil
}

// normalized renders what a decoded event holds, nil and empty lists alike.
func normalized(t *testing.T, ev *wireEvent) string {
	t.Helper()
	c := *ev
	if c.Running != nil {
		list := append([]wireRunning{}, *c.Running...)
		c.Running = &list
	}
	if len(c.Exceptions) == 0 {
		c.Exceptions = nil
	}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatalf("marshal %+v: %v", c, err)
	}
	return string(b)
}

func checkDecode(t *testing.T, body []byte) {
	t.Helper()
	var got, std wireEvent
	gm, gi := decode(body, &got, map[string]string{})
	sm, si := decodeStd(body, &std)
	if (gm == nil) != (sm == nil) {
		t.Fatalf("body %q: malformed: decode %v, encoding/json %v", body, gm, sm)
	}
	if gm != nil {
		return
	}
	if (gi == nil) != (si == nil) {
		t.Fatalf("body %q: invalid: decode %v, encoding/json %v", body, gi, si)
	}
	if g, s := normalized(t, &got), normalized(t, &std); g != s {
		t.Fatalf("body %q:\n decode        %s\n encoding/json %s", body, g, s)
	}
}

func seedBodies(t testing.TB) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			var l struct {
				Body json.RawMessage `json:"body"`
			}
			if json.Unmarshal(line, &l) == nil && len(l.Body) > 0 {
				out = append(out, l.Body)
			}
		}
	}
	for _, s := range []string{
		`{}`, ` {"id":"a"} `, `{"id":"a\u00e9\n","job":"\ud800"}`, `{"id":"caf` + "\xff" + `"}`,
		`{"threads":1.5,"busy":"x","jobs_done":null,"time":1e400,"bytes":-0}`,
		`{"metrics":5,"running":{},"exceptions":[1,null,"a"]}`,
		`{"metrics":{"timestamps":{"job.started":"x"}},"metrics":{"cpu_user":2}}`,
		`{"running":[null,5,{"id":"a","thread":[1,{"x":2}],"since":"1"}],"running":null}`,
		`{"busy":1,"busy":null,"redelivered":true,"redelivered":"no"}`,
		`{"a":[[[{"b":[true,false,null]}]]],"x":-1.5e-3}`,
		`{"id":"a",}`, `{"id":"a"`, `{"id":01}`, `{"id":"a"} x`, `[1]`, ``, `{"id":"a\x"}`,
		`{"ID":"b","Type":"job.started"}`,
		`{"phase":3,"elapsed":"x","bytes_total":1.5,"rss":null,"cpu":-0.5e1,"consumer_timeout":"1800"}`,
		`{"elapsed":1,"elapsed":null,"rss":7,"rss":"x","running":[{"id":"a","deadline":"soon"},{"deadline":1.7e9}]}`,
		// Found by fuzzing the hand-written decoder this package had.
		`{"executor":threa||||,"e`, `{"running":[`,
		// A wrong type, then more fields and a syntax error.
		`{"busy":"x","id":"a","time":2,}`, `{"busy":"x","id":"a","time":2} x`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, b := range seedBodies(t) {
		checkDecode(t, b)
	}
}

//go:build decoderbench

package state

// The decoders the model's (decode: segmentio/encoding/json) is measured
// against (BenchmarkApplyDecoders, in decoders_bench_test.go): each reads an
// event body into the same wireEvent, and sorts its errors into malformed
// (not JSON) and invalid (a value of the wrong type). Build with
// -tags decoderbench. The hand-written decoder and sonic, also measured
// for issue 15 (see decode), are in this file's history.

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// STATE_DECODER=name makes every test of the package run with that decoder
// (to see which behaviours a library would change).
func init() {
	if name := os.Getenv("STATE_DECODER"); name != "" {
		UseDecoder(name)
	}
}

// DecoderNames are the decoders UseDecoder knows, the model's own first.
var DecoderNames = []string{"segmentio", "std-unmarshal", "std-decoder", "jsonv2"}

// UseDecoder makes the model decode with the named decoder, until restore
// is called.
func UseDecoder(name string) (restore func()) {
	prev := decode
	decode = decoders()[name]
	if decode == nil {
		panic("no decoder " + name)
	}
	return func() { decode = prev }
}

type decodeFunc = func([]byte, *wireEvent, map[string]string) (error, error)

// decoders: go-json-experiment/json, which stops at the first value of the
// wrong type, reads such a body again with encoding/json, which reads the
// rest, as decode does with segmentio (rare: it takes a broken executor;
// the benchmark's events have none); it allows duplicate names and invalid
// UTF-8, as encoding/json does, but matches keys exactly.
func decoders() map[string]decodeFunc {
	return map[string]decodeFunc{
		"segmentio":     decodeSegmentio,
		"std-unmarshal": byUnmarshal(stdjson.Unmarshal, stdDecodeErrors),
		"std-decoder":   stdDecoder(),
		"jsonv2": withStdFallback(byUnmarshal(func(b []byte, v any) error {
			return jsonv2.Unmarshal(b, v, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
		}, v2Errors)),
	}
}

func withStdFallback(dec decodeFunc) decodeFunc {
	std := byUnmarshal(stdjson.Unmarshal, stdDecodeErrors)
	return func(body []byte, ev *wireEvent, intern map[string]string) (error, error) {
		malformed, invalid := dec(body, ev, intern)
		if invalid != nil {
			return std(body, ev, intern)
		}
		return malformed, invalid
	}
}

// objectStart reports whether body is, after white space, an object.
func objectStart(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

func byUnmarshal(unmarshal func([]byte, any) error, sort func(error) (error, error)) decodeFunc {
	return func(body []byte, ev *wireEvent, _ map[string]string) (error, error) {
		*ev = wireEvent{}
		if !objectStart(body) {
			return errNotObject, nil
		}
		return sort(unmarshal(body, ev))
	}
}

func v2Errors(err error) (malformed, invalid error) {
	var sem *jsonv2.SemanticError
	if errors.As(err, &sem) {
		return nil, err
	}
	return err, nil
}

// swapReader serves one body after another to a json.Decoder that is
// kept from one event to the next.
type swapReader struct{ b []byte }

func (r *swapReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// stdDecoder is encoding/json with one json.Decoder reused (a new one
// after a body it could not read).
func stdDecoder() decodeFunc {
	r := &swapReader{}
	dec := stdjson.NewDecoder(r)
	return func(body []byte, ev *wireEvent, _ map[string]string) (error, error) {
		*ev = wireEvent{}
		if !objectStart(body) {
			return errNotObject, nil
		}
		r.b = body
		err := dec.Decode(ev)
		if err == nil && len(bytes.TrimSpace(r.b)) != 0 || dec.More() {
			err = errors.New("invalid JSON after the object")
		}
		if m, i := stdDecodeErrors(err); m != nil {
			dec = stdjson.NewDecoder(r)
			r.b = nil
			return m, nil
		} else {
			return nil, i
		}
	}
}

// TestDecodersAgree reports (without failing) where each decoder reads
// the seed bodies differently from encoding/json, the reference.
func TestDecodersAgree(t *testing.T) {
	for _, name := range DecoderNames {
		dec := decoders()[name]
		differ := 0
		bodies := seedBodies(t)
		logf := func(format string, args ...any) {
			if differ++; differ <= 2 { // the first ones tell the kind
				t.Logf(format, args...)
			}
		}
		for _, body := range bodies {
			var got, std wireEvent
			gm, gi := dec(body, &got, map[string]string{})
			sm, si := decodeStd(body, &std)
			switch {
			case (gm == nil) != (sm == nil):
				logf("%s: %q: malformed %v, encoding/json %v", name, body, gm, sm)
			case gm != nil:
			case (gi == nil) != (si == nil):
				logf("%s: %q: invalid %v, encoding/json %v", name, body, gi, si)
			case normalized(t, &got) != normalized(t, &std):
				logf("%s: %q:\n %s\n encoding/json %s", name, body, normalized(t, &got), normalized(t, &std))
			}
		}
		t.Logf("%-16s reads %d of %d seed bodies as encoding/json does", name, len(bodies)-differ, len(bodies))
	}
}

// DecodeWith returns the named decoder as the model uses it (one wireEvent
// and one table of shared strings, kept from one body to the next).
func DecodeWith(name string) func(body []byte) (malformed, invalid error) {
	dec := decoders()[name]
	var ev wireEvent
	intern := map[string]string{}
	return func(body []byte) (error, error) { return dec(body, &ev, intern) }
}

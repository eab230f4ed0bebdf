package collector

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestFormatLine(t *testing.T) {
	// Received in another zone: printed in UTC.
	received := time.Date(2025, 3, 1, 13, 4, 5, 678_900_000, time.FixedZone("CET", 3600))
	const ts = "2025-03-01T12:04:05.678Z"
	tests := []struct {
		name string
		body string
		want string // the columns after the time, joined by "|"
	}{
		{
			name: "full event",
			body: `{"executor":"e-uuid","timestamp":1740830645.5,"type":"job.finished","id":"j-1","job":"j-1","thread":2,
				"executable":"/bin/sh","exit_status":0,"exceptions":[],
				"metrics":{"executor":"e-uuid","thread":2,"execution":3.5,"input_size":1048576,"output_size":2048,"stage_in":0.1}}`,
			want: "e-uuid|2|j-1|/bin/sh|3.5|1048576|2048",
		},
		{
			name: "missing metrics",
			body: `{"executor":"e","id":"j","thread":1,"executable":"x"}`,
			want: "e|1|j|x|NA|NA|NA",
		},
		{
			name: "null metrics and values",
			body: `{"executor":null,"id":"j","thread":null,"executable":"","metrics":null}`,
			want: "NA|NA|j|NA|NA|NA|NA",
		},
		{
			name: "partial metrics",
			body: `{"executor":"e","id":"j","thread":1,"executable":"x","metrics":{"execution":0,"output_size":null}}`,
			want: "e|1|j|x|0|NA|NA",
		},
		{
			name: "job instead of id (original executor)",
			body: `{"executor":"e","job":"j-orig","thread":70123456789012,"executable":"x","metrics":{"execution":1,"input_size":0,"output_size":0}}`,
			want: "e|70123456789012|j-orig|x|1|0|0",
		},
		{
			name: "id wins over job",
			body: `{"executor":"e","id":"j-id","job":"j-job","thread":1,"executable":"x"}`,
			want: "e|1|j-id|x|NA|NA|NA",
		},
		{
			name: "empty id falls back to job",
			body: `{"executor":"e","id":"","job":"j-job","thread":1,"executable":"x"}`,
			want: "e|1|j-job|x|NA|NA|NA",
		},
		{
			name: "big thread number kept exactly",
			body: `{"executor":"e","id":"j","thread":123456789012345678901234567890,"executable":"x"}`,
			want: "e|123456789012345678901234567890|j|x|NA|NA|NA",
		},
		{
			name: "thread and executor from metrics",
			body: `{"id":"j","executable":"x","metrics":{"executor":"me","thread":7,"execution":2}}`,
			want: "me|7|j|x|2|NA|NA",
		},
		{
			name: "thread as string",
			body: `{"executor":"e","id":"j","thread":"70123","executable":"x"}`,
			want: "e|70123|j|x|NA|NA|NA",
		},
		{
			name: "numbers in plain decimal",
			body: `{"executor":"e","id":"j","thread":1,"executable":"x","metrics":{"execution":1e-7,"input_size":1.0E6,"output_size":2.5e3}}`,
			want: "e|1|j|x|0.0000001|1000000|2500",
		},
		{
			name: "tabs and newlines in strings",
			body: `{"executor":"e","id":"j","thread":1,"executable":"/bin/my\ttool\n"}`,
			want: "e|1|j|/bin/my tool |NA|NA|NA",
		},
		{
			name: "wrong types are NA",
			body: `{"executor":{},"id":["j"],"thread":[1],"executable":"x","metrics":"lots"}`,
			want: "NA|NA|NA|x|NA|NA|NA",
		},
		{
			name: "empty object",
			body: `{}`,
			want: "NA|NA|NA|NA|NA|NA|NA",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := FormatLine(received, []byte(tt.body))
			if err != nil {
				t.Fatalf("FormatLine: %v", err)
			}
			want := ts + "\t" + strings.ReplaceAll(tt.want, "|", "\t")
			if line != want {
				t.Errorf("line\n got %q\nwant %q", line, want)
			}
			if n := strings.Count(line, "\t"); n != 7 {
				t.Errorf("line has %d tabs, want 7", n)
			}
		})
	}
}

func TestFormatLineMalformed(t *testing.T) {
	for _, body := range []string{"", "not json", `{"id":`, "null", `["job"]`, `"text"`, "42"} {
		if line, err := FormatLine(time.Now(), []byte(body)); err == nil {
			t.Errorf("FormatLine(%q) = %q, want an error", body, line)
		}
	}
}

func TestParseArgs(t *testing.T) {
	getenv := func(k string) string {
		if k == "AMQP_URL" {
			return "amqp://127.0.0.1:1/"
		}
		return ""
	}
	o, err := ParseArgs(nil, func(string) string { return "" })
	if err != nil || o.AMQPURL != DefaultAMQPURL || o.Exchange != "hyperflow.events" || o.Header {
		t.Errorf("defaults = %+v, %v", o, err)
	}
	o, err = ParseArgs(nil, getenv)
	if err != nil || o.AMQPURL != "amqp://127.0.0.1:1/" {
		t.Errorf("env = %+v, %v", o, err)
	}
	o, err = ParseArgs([]string{"--amqp-url", "amqp://127.0.0.1:2/", "--exchange", "ev", "--header"}, getenv)
	if err != nil || o.AMQPURL != "amqp://127.0.0.1:2/" || o.Exchange != "ev" || !o.Header {
		t.Errorf("flags = %+v, %v", o, err)
	}
	if _, err := ParseArgs([]string{"extra"}, getenv); err == nil {
		t.Error("positional argument accepted")
	}
	if _, err := ParseArgs([]string{"--exchange", ""}, getenv); err == nil {
		t.Error("empty exchange accepted")
	}
	if o.Order != "shuffle" {
		t.Errorf("default order %q, want shuffle", o.Order)
	}
	o, err = ParseArgs([]string{"--amqp-url-order", "ordered"}, getenv)
	if err != nil || o.Order != "ordered" {
		t.Errorf("--amqp-url-order ordered = %+v, %v", o, err)
	}
	o, err = ParseArgs(nil, func(k string) string { return map[string]string{"AMQP_URL_ORDER": "ordered"}[k] })
	if err != nil || o.Order != "ordered" {
		t.Errorf("AMQP_URL_ORDER=ordered = %+v, %v", o, err)
	}
	if _, err := ParseArgs([]string{"--amqp-url-order", "random"}, getenv); err == nil || !strings.Contains(err.Error(), "--amqp-url-order") {
		t.Errorf("--amqp-url-order random: %v", err)
	}
	if _, err := ParseArgs([]string{"--help"}, getenv); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

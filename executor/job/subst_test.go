package job

import (
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestFormatNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"},
		{"-0", "-0"},
		{"1000", "1000"},
		{"0.5", "0.5"},
		{"-3", "-3"},
		{"0.25", "0.25"},
		{"1e21", "1000000000000000000000"},
		{"1E2", "100"},
		{"1e+2", "100"},
		{"2.50", "2.5"},
		{"1.0", "1"},
		{"-1e-7", "-0.0000001"},
		{"123456789012345", "123456789012345"},
		{"1234567890123456", "1234567890123456"},
		{"12345678901234567", "12345678901234568"},
		{"9007199254740993", "9007199254740992"},
		{"-123456789012345678901234567890", "-123456789012345680000000000000"},
		{"0.1", "0.1"},
		{"1e-400", "0"},
	}
	for _, tt := range tests {
		got, err := FormatNumber(json.Number(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("FormatNumber(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-", "abc", "NaN", "Inf", "-Inf", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "0x10", "1_000", " 1", "1 ", "1e999", "-1e999"} {
		if got, err := FormatNumber(json.Number(bad)); err == nil {
			t.Errorf("FormatNumber(%q) = %q, want an error", bad, got)
		}
	}
}

// FormatNumber agrees with strconv.FormatFloat on the float64 a JSON number denotes, whatever
// its spelling.
func TestFormatNumberMatchesFormatFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var f float64
		switch r.IntN(4) {
		case 0:
			f = math.Float64frombits(r.Uint64())
		case 1:
			f = float64(r.Int64N(1 << 62))
		case 2:
			f = float64(r.IntN(2000000)-1000000) / 1000
		default:
			f = r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			continue
		}
		want := strconv.FormatFloat(f, 'f', -1, 64)
		for _, spelled := range []string{
			strconv.FormatFloat(f, 'g', -1, 64),
			strconv.FormatFloat(f, 'e', -1, 64),
			strconv.FormatFloat(f, 'E', 20, 64),
			want,
		} {
			got, err := FormatNumber(json.Number(spelled))
			if err != nil || got != want {
				t.Fatalf("FormatNumber(%s) = %q, %v; want %q", spelled, got, err, want)
			}
		}
	}
}

func testSignals(t *testing.T, js string) []Signal {
	t.Helper()
	var s []Signal
	if err := decodeJSONValue([]byte(js), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSubstitutionTable(t *testing.T) {
	in := testSignals(t, `[
		{"name": "in", "path": "in.txt", "tags": ["a", "b"], "n": 1e3, "ok": true, "nested": [1, [2, [3]], "x"],
		 "obj": {"a": 1}, "nul": null, "mixed": [1, {}], "withnull": [null], "empty": []},
		{"name": "in_path", "x": "from in_path"},
		{"noname": 1},
		{"name": 7, "x": "y"}
	]`)
	out := testSignals(t, `[{"name": "out", "path": "out.txt"}, {"name": "in", "path": "shadowed"}, {"name": "a.b", "c": "d"}, {"name": "o", "a-b": "x", "k": "v"}]`)
	got := SubstitutionTable(in, out)
	want := map[string]string{
		"in_name":      "in",
		"in_path":      "in.txt",
		"in_tags":      "a,b",
		"in_n":         "1000",
		"in_ok":        "true",
		"in_nested":    "1,2,3,x",
		"in_empty":     "",
		"in_path_name": "in_path",
		"in_path_x":    "from in_path",
		"out_name":     "out",
		"out_path":     "out.txt",
		"o_name":       "o",
		"o_k":          "v",
	}
	if !maps.Equal(got, want) {
		t.Errorf("SubstitutionTable =\n%q\nwant\n%q", got, want)
	}
	if len(SubstitutionTable(nil, nil)) != 0 {
		t.Error("table of no signals is not empty")
	}
}

// An input comes before an output, and an earlier signal before a later one, when two give the
// same key.
func TestSubstitutionTableAmbiguity(t *testing.T) {
	in := testSignals(t, `[{"name": "in", "path_x": "attr path_x of in"}, {"name": "in_path", "x": "attr x of in_path"}]`)
	out := testSignals(t, `[{"name": "in", "path_x": "from the output"}]`)
	got := SubstitutionTable(in, out)
	if got["in_path_x"] != "attr path_x of in" {
		t.Errorf("in_path_x = %q, want the first input's", got["in_path_x"])
	}
	in2 := testSignals(t, `[{"name": "in_path", "x": "attr x of in_path"}, {"name": "in", "path_x": "attr path_x of in"}]`)
	if got := SubstitutionTable(in2, nil)["in_path_x"]; got != "attr x of in_path" {
		t.Errorf("in_path_x = %q, want the first input's", got)
	}
}

func TestSubstitute(t *testing.T) {
	table := map[string]string{
		"in_name": "in", "in_path": "in.txt", "out_path": "out.txt", "in_tags": "a,b", "x": "$in_name", "e": "",
	}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$in_name", "in"},
		{"tr a-z A-Z < $in_path > $out_path", "tr a-z A-Z < in.txt > out.txt"},
		{"$in_path_x", "$in_path_x"}, // the longest run is the token: no prefix matching
		{"$HOME", "$HOME"},
		{"$unknown", "$unknown"},
		{"$in_tags", "a,b"},
		{"$in_path.bak", "in.txt.bak"},
		{"$in_name$in_name", "inin"},
		{"$$in_name", "$in"},
		{"$", "$"},
		{"a$", "a$"},
		{"$ $in_name", "$ in"},
		{"${in_name}", "${in_name}"},
		{"$1 $2", "$1 $2"},
		{"$x", "$in_name"}, // not substituted again
		{"[$e]", "[]"},
		{"é$in_name€", "éin€"},
		{"$in_nameX", "$in_nameX"},
		{"$((n + $in_name))", "$((n + in))"},
	}
	for _, tt := range tests {
		if got := Substitute(tt.in, table); got != tt.want {
			t.Errorf("Substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Substitute("$in_name", nil); got != "$in_name" {
		t.Errorf("Substitute with a nil table = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { Substitute("no dollar here, $HOME and $1", table) }); n != 0 {
		t.Errorf("Substitute without a match allocates %v times", n)
	}
}

func BenchmarkSubstitute(b *testing.B) {
	table := map[string]string{"in_path": "in.txt", "out_path": "out.txt"}
	b.ReportAllocs()
	for b.Loop() {
		Substitute("tr a-z A-Z < $in_path > $out_path; echo $HOME", table)
	}
}

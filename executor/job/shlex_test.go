package job

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

var splitArgsTests = []struct {
	in   string
	want []string
	// sh: the case is a plain command line for a POSIX shell too (no $, globbing, operators),
	// so /bin/sh must split it the same way.
	sh bool
}{
	{"", nil, true},
	{" \t\n ", nil, true},
	{"a", []string{"a"}, true},
	{"  a   b\tc\nd  ", []string{"a", "b", "c", "d"}, false}, // sh ends the command at the newline
	{"a\r\nb", []string{"a", "b"}, false},
	{`'%s|%s\n' "two words" it\'s`, []string{`%s|%s\n`, "two words", "it's"}, true},
	{`'a b'`, []string{"a b"}, true},
	{`'a\b'`, []string{`a\b`}, true},
	{`'a"b'`, []string{`a"b`}, true},
	{`'$HOME'`, []string{"$HOME"}, true},
	{`''`, []string{""}, true},
	{`"" ''`, []string{"", ""}, true},
	{`a'' b`, []string{"a", "b"}, true},
	{`a'b'"c"d`, []string{"abcd"}, true},
	{`"a b"c`, []string{"a bc"}, true},
	{`"a\"b"`, []string{`a"b`}, true},
	{`"a\\b"`, []string{`a\b`}, true},
	{`"a\$b"`, []string{`a$b`}, true},
	{"\"a\\`b\"", []string{"a`b"}, true},
	{`"a\nb"`, []string{`a\nb`}, true},
	{`"a\'b"`, []string{`a\'b`}, true},
	{"\"a\\\nb\"", []string{"ab"}, true},
	{"\"a\nb\"", []string{"a\nb"}, true},
	{`"'"`, []string{"'"}, true},
	{`"$HOME $(ls) ` + "`x`" + `"`, []string{"$HOME $(ls) `x`"}, false},
	{`a\ b`, []string{"a b"}, true},
	{`\a\b`, []string{"ab"}, true},
	{`\\`, []string{`\`}, true},
	{`\'`, []string{`'`}, true},
	{`\"`, []string{`"`}, true},
	{"a\\\nb", []string{"ab"}, true},
	{"a \\\n b", []string{"a", "b"}, true},
	{"\\\n", nil, true},
	{`$HOME *.txt ~ a;b a|b #c`, []string{"$HOME", "*.txt", "~", "a;b", "a|b", "#c"}, false},
	{"é 'ü x' \"€\"", []string{"é", "ü x", "€"}, true},
	{`-c "n=\$(cat \"\$1\")"`, []string{"-c", `n=$(cat "$1")`}, true},
}

func TestSplitArgs(t *testing.T) {
	for _, tt := range splitArgsTests {
		got, err := SplitArgs(tt.in)
		if err != nil {
			t.Errorf("SplitArgs(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("SplitArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSplitArgsLikeSh checks the expectations above against the system's /bin/sh.
func TestSplitArgsLikeSh(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	for _, tt := range splitArgsTests {
		if !tt.sh {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// Run the words through the shell as the arguments of a function.
		script := "f() { for a in \"$@\"; do printf '%s\\0' \"$a\"; done; }\nf " + tt.in + "\n"
		out, err := exec.CommandContext(ctx, sh, "-c", script).Output()
		cancel()
		if err != nil {
			t.Errorf("sh on %q: %v", tt.in, err)
			continue
		}
		var words []string
		for w := range bytes.SplitSeq(out, []byte{0}) {
			words = append(words, string(w))
		}
		words = words[:len(words)-1] // after the last NUL
		if !slices.Equal(words, tt.want) {
			t.Errorf("sh splits %q into %q, the test expects %q", tt.in, words, tt.want)
		}
	}
}

func TestSplitArgsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`'a`, "unterminated single quote at byte 0"},
		{`a 'b`, "unterminated single quote at byte 2"},
		{`"a`, "unterminated double quote at byte 0"},
		{`a "b\"`, "unterminated double quote at byte 2"},
		{`"a\`, "unterminated double quote at byte 0"},
		{`a\`, "backslash at the end of the string (byte 1) escapes nothing"},
		{`it's`, "unterminated single quote at byte 2"},
	}
	for _, tt := range tests {
		got, err := SplitArgs(tt.in)
		if err == nil {
			t.Errorf("SplitArgs(%q) = %q, want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SplitArgs(%q) error = %q, want %q", tt.in, err, tt.want)
		}
	}
}

// quoteWord quotes w for SplitArgs (and sh) with single quotes.
func quoteWord(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

func FuzzSplitArgs(f *testing.F) {
	for _, tt := range splitArgsTests {
		f.Add(tt.in)
	}
	for _, path := range globWireFixtures(f, "jobs/*.json") {
		var fx jobFixture
		readWireFixture(f, path, &fx)
		var m map[string]any
		if err := decodeJSONValue(fx.Job, &m); err == nil {
			if s, ok := m["args"].(string); ok {
				f.Add(s)
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitArgs(s)
		if err != nil {
			return
		}
		// Quoting the words back and splitting again gives the same words.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quoteWord(w)
		}
		again, err := SplitArgs(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("SplitArgs(%q) = %q; requoted gives %q, %v", s, words, again, err)
		}
		// Without quotes or backslashes, it is a plain split on white space.
		if !strings.ContainsAny(s, `'"\`) {
			plain := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' })
			if !slices.Equal(words, plain) {
				t.Fatalf("SplitArgs(%q) = %q, want %q", s, words, plain)
			}
		}
	})
}

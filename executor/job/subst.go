package job

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FormatNumber formats a JSON number the way strconv.FormatFloat(f, 'f', -1, 64) does, which is
// how the HyperFlow engine's (JavaScript) numbers are meant to reach a command line: 1000 gives
// "1000", 0.5 gives "0.5", -3 gives "-3" and 1e21 gives "1000000000000000000000". It fails for
// text that is not a JSON number and for numbers out of the float64 range.
func FormatNumber(n json.Number) (string, error) {
	s := string(n)
	isInt, ok := scanJSONNumber(s)
	if !ok {
		return "", fmt.Errorf("invalid number %q", s)
	}
	// Fast path: an integer of at most 15 digits is exact in a float64 and FormatFloat would
	// give back the same text.
	if isInt {
		digits := len(s)
		if s[0] == '-' {
			digits--
		}
		if digits <= 15 {
			return s, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("number %s is out of range", s)
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}

// scanJSONNumber reports whether s is a JSON number (RFC 8259 grammar) and whether it is a
// plain integer (no fraction, no exponent).
func scanJSONNumber(s string) (isInt, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isASCIIDigit(s[i]) {
			i++
		}
	default:
		return false, false
	}
	isInt = true
	if i < len(s) && s[i] == '.' {
		isInt = false
		i++
		start := i
		for i < len(s) && isASCIIDigit(s[i]) {
			i++
		}
		if i == start {
			return false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		isInt = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && isASCIIDigit(s[i]) {
			i++
		}
		if i == start {
			return false, false
		}
	}
	return isInt, i == len(s)
}

func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }

// isWord reports whether s is made only of [A-Za-z0-9_].
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

// isWordByte reports whether c belongs to a substitution token: [A-Za-z0-9_].
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// SubstitutionTable builds the lookup table used by Substitute: for every signal that has a
// string "name", and every attribute of it (including "name" itself), the key
// "<name>_<attribute>" maps to the attribute's value as text. Keys no token can match are left
// out: those of a signal whose name, or of an attribute whose name, has a character outside
// [A-Za-z0-9_] (the signal "in.txt" gives no key; "$in" in "$in.txt_name" is the token "in"). Inputs are taken before outputs
// and the first signal to produce a key wins, so an input shadows an output (and an earlier
// signal a later one) when two produce the same key (signal "in" with attribute "path_x" and
// signal "in_path" with attribute "x" both give "in_path_x").
//
// Values: strings as they are; numbers formatted with FormatNumber; booleans as "true" or
// "false"; arrays of those joined with "," (nested arrays flattened). Attributes whose value is
// null, an object, or an array holding null or an object produce no key, so their tokens stay
// as they are.
func SubstitutionTable(inputs, outputs []Signal) map[string]string {
	n := 0
	for _, s := range inputs {
		n += len(s)
	}
	for _, s := range outputs {
		n += len(s)
	}
	table := make(map[string]string, n)
	var b strings.Builder
	add := func(sigs []Signal) {
		for _, sig := range sigs {
			name, ok := sig["name"].(string)
			if !ok || !isWord(name) {
				continue
			}
			for attr, v := range sig {
				if !isWord(attr) {
					continue
				}
				key := name + "_" + attr
				if _, dup := table[key]; dup {
					continue
				}
				b.Reset()
				if attrText(&b, v) {
					table[key] = b.String()
				}
			}
		}
	}
	add(inputs)
	add(outputs)
	return table
}

// attrText writes the text of a signal attribute value to b and reports whether the value has
// one (see SubstitutionTable).
func attrText(b *strings.Builder, v any) bool {
	switch v := v.(type) {
	case string:
		b.WriteString(v)
	case json.Number:
		s, err := FormatNumber(v)
		if err != nil {
			return false
		}
		b.WriteString(s)
	case float64: // signals built by hand rather than decoded with UseNumber
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return false
		}
		b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case []any:
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if !attrText(b, e) {
				return false
			}
		}
	default:
		return false
	}
	return true
}

// Substitute replaces in s every token made of "$" and the longest run of [A-Za-z0-9_] after
// it by table[run], when the table has that key; any other token is left exactly as it is (so
// "$HOME", "$1" and "$in_path_x" survive when the table has no such key: there is no matching
// of a shorter prefix). Replacement text is not scanned again. s is returned unchanged (without
// copying) when nothing is replaced.
func Substitute(s string, table map[string]string) string {
	i := strings.IndexByte(s, '$')
	if i < 0 || len(table) == 0 {
		return s
	}
	var b strings.Builder
	last := 0 // s[last:i] is not yet written
	for i >= 0 {
		j := i + 1
		for j < len(s) && isWordByte(s[j]) {
			j++
		}
		if j > i+1 {
			if v, ok := table[s[i+1:j]]; ok {
				if b.Len() == 0 {
					b.Grow(len(s) + len(v))
				}
				b.WriteString(s[last:i])
				b.WriteString(v)
				last = j
			}
		}
		next := strings.IndexByte(s[j:], '$')
		if next < 0 {
			break
		}
		i = j + next
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

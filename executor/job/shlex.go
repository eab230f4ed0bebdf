package job

import (
	"fmt"
	"strings"
)

// SplitArgs splits s into words the way a POSIX shell splits a simple command line,
// without running anything through a shell:
//
//   - space, tab, carriage return and newline separate words;
//   - single quotes keep everything up to the next single quote literally;
//   - inside double quotes a backslash escapes only \ " $ ` and newline (an escaped newline
//     is removed, as a line continuation); before any other character it stays literal;
//   - outside quotes a backslash makes the next character literal (a backslash before a
//     newline removes both);
//   - quotes may be joined to other text in one word (a'b'"c" is abc), and a pair of quotes with
//     nothing between them gives an empty word.
//
// There is no variable expansion, globbing, command substitution, comment (#), redirection or
// operator handling: such characters are ordinary word characters. An unterminated quote or a
// backslash at the very end is an error. A blank string gives no words (nil).
func SplitArgs(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool // a word has started (possibly empty, from "" or '')
	)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated single quote at byte %d", i)
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			start := i
			i++
			closed := false
			for i < len(s) {
				d := s[i]
				if d == '"' {
					closed = true
					i++
					break
				}
				if d == '\\' && i+1 < len(s) {
					switch s[i+1] {
					case '\\', '"', '$', '`':
						cur.WriteByte(s[i+1])
						i += 2
						continue
					case '\n':
						i += 2
						continue
					}
				}
				cur.WriteByte(d)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated double quote at byte %d", start)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("backslash at the end of the string (byte %d) escapes nothing", i)
			}
			if s[i+1] == '\n' {
				// Line continuation: removed, and it neither starts nor ends a word.
				i += 2
				continue
			}
			cur.WriteByte(s[i+1])
			inWord = true
			i += 2
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

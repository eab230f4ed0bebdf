package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// redacted replaces a secret, or the password of a URL, wherever it is shown.
const redacted = "***"

// Secret is a string that never shows its value when printed: String,
// Format (every fmt verb, including %#v, %q and %x), LogValue (slog) and
// MarshalText (JSON, YAML and text encoders) all give "***", or for a URL
// the URL with only its password masked (see RedactURL). An empty Secret
// prints as "". Reveal returns the real value.
//
// Decoding is unaffected: YAML and JSON decode a plain string into a Secret.
type Secret string

// Reveal returns the secret's real value. Call it only where the value is
// used, never to log or print it.
func (s Secret) Reveal() string { return string(s) }

// String returns the value redacted: "" when empty, the URL with its
// password masked when the value is a URL ("scheme://..."), "***" otherwise.
func (s Secret) String() string {
	switch {
	case s == "":
		return ""
	case strings.Contains(string(s), "://"):
		return RedactURL(string(s))
	default:
		return redacted
	}
}

// Format implements fmt.Formatter so that every verb prints the redacted
// form; without it %#v or a bad verb such as %d would print the raw string.
func (s Secret) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler, so that marshalling a
// struct holding a Secret (encoding/json, yaml, slog's JSON handler) does
// not leak it either.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// RedactURL returns raw with the password of its user information replaced
// by "***", e.g. "amqp://guest:***@localhost:5672/". A URL without a
// password is returned unchanged. Anything that does not parse as a URL
// with a scheme, or whose user information cannot be told apart safely,
// gives "***", so that no part of a password is ever shown.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "://") {
		return redacted
	}
	u, err := url.Parse(raw) // never show err: it quotes raw
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return redacted
	}
	if u.User == nil {
		if strings.Contains(raw, "@") {
			// An '@' outside the user information, e.g. after a password
			// holding '/', '?' or '#': the parser may have put part of the
			// password into the path, query or fragment.
			return redacted
		}
		return raw
	}
	if _, hasPassword := u.User.Password(); !hasPassword {
		return raw
	}
	rest := *u
	rest.User = nil
	s := rest.String()
	prefix := u.Scheme + "://"
	if !strings.HasPrefix(s, prefix) {
		return redacted
	}
	user := url.User(u.User.Username()).String()
	return prefix + user + ":" + redacted + "@" + s[len(prefix):]
}

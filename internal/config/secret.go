package config

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

// redacted replaces a secret wherever it is shown.
const redacted = redact.Mask

// Secret is a string that never shows its value when printed: String,
// Format (every fmt verb, including %#v, %q and %x), LogValue (slog) and
// MarshalText (JSON, YAML and text encoders) all give "***", or for a URL
// the URL with only its password masked (see redact.URL). An empty Secret
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
		return redact.URL(string(s))
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

// Package redact hides passwords in URLs wherever they are shown: logs,
// events, errors and the monitor. It is a leaf: everything may use it.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces a secret, or the password of a URL, wherever it is shown.
const Mask = "***"

// URL returns raw with the password of its user information replaced
// by "***", e.g. "amqp://guest:***@localhost:5672/". A URL without a
// password is returned unchanged. Anything that does not parse as a URL
// with a scheme, or whose user information cannot be told apart safely,
// gives "***", so that no part of a password is ever shown.
//
// raw may be a comma-separated list of URLs (a broker cluster, amqp_url):
// every URL of it is redacted, so that no password of any of them is shown.
// A comma inside a password splits it into parts that do not parse, each
// of which is masked.
func URL(raw string) string {
	if strings.Contains(raw, ",") {
		parts := strings.Split(raw, ",")
		for i, p := range parts {
			parts[i] = oneURL(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	return oneURL(raw)
}

func oneURL(raw string) string {
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "://") {
		return Mask
	}
	u, err := url.Parse(raw) // never show err: it quotes raw
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return Mask
	}
	if u.User == nil {
		if strings.Contains(raw, "@") {
			// An '@' outside the user information, e.g. after a password
			// holding '/', '?' or '#': the parser may have put part of the
			// password into the path, query or fragment.
			return Mask
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
		return Mask
	}
	user := url.User(u.User.Username()).String()
	return prefix + user + ":" + Mask + "@" + s[len(prefix):]
}

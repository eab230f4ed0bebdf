package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"default", "amqp://guest:guest@localhost:5672/", "amqp://guest:***@localhost:5672/"},
		{"amqps with vhost", "amqps://user:p4ss@broker.example.com:5671/prod", "amqps://user:***@broker.example.com:5671/prod"},
		{"escaped password", "amqp://user:p%40ss%2Fword@h/", "amqp://user:***@h/"},
		{"escaped user kept", "amqp://us%40er:pw@h/", "amqp://us%40er:***@h/"},
		{"query kept", "amqp://u:pw@h/?heartbeat=10", "amqp://u:***@h/?heartbeat=10"},
		{"empty password", "amqp://u:@h/", "amqp://u:***@h/"},
		{"no password", "amqp://u@h/", "amqp://u@h/"},
		{"no user info", "amqp://localhost:5672/", "amqp://localhost:5672/"},
		{"http", "http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"empty", "", ""},
		{"not a URL", "hunter2", "***"},
		{"unparsable", "amqp://u:pw@h:port:x/%zz", "***"},
		{"slash in password", "amqp://u:pa/ss@h/", "***"},
		{"question mark in password", "amqp://u:12?x@h/", "***"},
		{"hash in password", "amqp://u:12#x@h/", "***"},
		{"two URLs", "amqp://u:pw1@a/v,amqp://u:pw2@b/v", "amqp://u:***@a/v,amqp://u:***@b/v"},
		{"three URLs with spaces", "amqp://u:pw1@a:5672/, amqp://u:pw2@b:5673/ ,amqps://w:pw3@c/", "amqp://u:***@a:5672/,amqp://u:***@b:5673/,amqps://w:***@c/"},
		{"comma in password", "amqp://u:pw,2@a/", "***,***"},
		{"second without password", "amqp://u:pw1@a/,amqp://b/", "amqp://u:***@a/,amqp://b/"},
		{"empty part", "amqp://u:pw1@a/,", "amqp://u:***@a/,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.raw); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

// TestURLListHidesEveryPassword: no password of any URL of a list survives.
func TestURLListHidesEveryPassword(t *testing.T) {
	raw := "amqp://alice:s3cretA@n1:5672/v,amqp://bob:s3cretB@n2:5673/v,amqp://carol:s3cretC@n3/v"
	got := URL(raw)
	for _, secret := range []string{"s3cretA", "s3cretB", "s3cretC"} {
		if strings.Contains(got, secret) {
			t.Errorf("URL(list) = %q shows the password %q", got, secret)
		}
	}
	for _, host := range []string{"n1:5672", "n2:5673", "n3"} {
		if !strings.Contains(got, host) {
			t.Errorf("URL(list) = %q lost the host %q", got, host)
		}
	}
}

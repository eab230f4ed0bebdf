package redact

import "testing"

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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.raw); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

package config

import (
	"slices"
	"testing"
)

func TestEnvNames(t *testing.T) {
	names := EnvNames()
	for _, want := range []string{"AMQP_URL", "AMQP_QUEUE", "THREADS", "SHUTDOWN_GRACE", "HYPERFLOW_TMPDIR",
		"METRICS_ADDR", "AWS_ACCESS_KEY_ID", "X509_USER_PROXY"} {
		if !slices.Contains(names, want) {
			t.Errorf("EnvNames() lacks %s: %v", want, names)
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			t.Errorf("EnvNames() has %q twice or empty: %v", n, names)
		}
		seen[n] = true
	}
	// Every name is one Load really looks up, and Load looks up no other
	// (the file templates aside).
	asked := map[string]bool{}
	if _, _, err := Load(nil, func(k string) string { asked[k] = true; return "" }, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !asked[n] {
			t.Errorf("Load never reads %s", n)
		}
		delete(asked, n)
	}
	if len(asked) > 0 {
		t.Errorf("Load reads variables EnvNames() omits: %v", asked)
	}
}

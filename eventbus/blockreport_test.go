package eventbus

import "testing"

// TestBlockReport follows a connection through a block and after it: the
// reports made during the block (dropped with every event) and the first
// one after it say blocked; a new connection starts afresh.
func TestBlockReport(t *testing.T) {
	show := func(b *bool) string {
		if b == nil {
			return "nil"
		}
		if *b {
			return "true"
		}
		return "false"
	}
	var r BlockReport
	if got := show(r.Since(nil)); got != "nil" {
		t.Errorf("no connection: %s, want nil", got)
	}
	c := &Client{}
	steps := []struct {
		what  string
		block func()
		want  string
	}{
		{"never blocked", func() {}, "nil"},
		{"blocked now", func() { c.blocks.Add(1); c.blocked.Store(true) }, "true"},
		{"still blocked", func() {}, "true"},
		{"block over", func() { c.blocked.Store(false) }, "true"},
		{"after the first report", func() {}, "false"},
		{"a block and its end between two reports", func() { c.blocks.Add(1) }, "true"},
		{"quiet again", func() {}, "false"},
	}
	for _, s := range steps {
		s.block()
		if got := show(r.Since(c)); got != s.want {
			t.Errorf("%s: %s, want %s", s.what, got, s.want)
		}
	}
	fresh := &Client{}
	if got := show(r.Since(fresh)); got != "nil" {
		t.Errorf("a new connection never blocked: %s, want nil", got)
	}
}

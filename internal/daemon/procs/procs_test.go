package procs

import (
	"runtime"
	"testing"
)

func TestFor(t *testing.T) {
	for _, c := range []struct{ threads, limit, want int }{
		{1, 2, 1},
		{4, 2, 1},
		{5, 2, 2}, // rounded up
		{8, 2, 2},
		{64, 2, 2}, // never more than the CPUs the runtime may use
		{8, 32, 2}, // one P per JobsPerProc slots
		{64, 16, 16},
		{65, 64, 17},
		{0, 4, 1},   // at least one
		{100, 0, 1}, // a limit below one still gives one
	} {
		if got := For(c.threads, c.limit); got != c.want {
			t.Errorf("For(%d, %d) = %d, want %d", c.threads, c.limit, got, c.want)
		}
	}
}

func TestSetLeavesAnExplicitGOMAXPROCS(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	env := map[string]string{"GOMAXPROCS": "3"}
	n, chosen := Set(1, func(k string) string { return env[k] })
	if chosen || n != before || runtime.GOMAXPROCS(0) != before {
		t.Errorf("Set with GOMAXPROCS in the environment: got (%d, %v), GOMAXPROCS %d; want (%d, false) and unchanged",
			n, chosen, runtime.GOMAXPROCS(0), before)
	}
}

func TestSetChooses(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	runtime.GOMAXPROCS(4)
	n, chosen := Set(5, func(string) string { return "" })
	if !chosen || n != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("Set(5) with 4 CPUs: got (%d, %v), GOMAXPROCS %d; want (2, true) and 2", n, chosen, runtime.GOMAXPROCS(0))
	}
}

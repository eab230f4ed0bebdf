package procs

import (
	"runtime"
	"testing"
)

func TestFor(t *testing.T) {
	for _, c := range []struct{ threads, limit, want int }{
		{1, 2, 1},
		{8, 2, 1},
		{9, 2, 2},
		{64, 2, 2},  // never more than the CPUs the runtime may use
		{64, 32, 8}, // one P per JobsPerProc slots
		{65, 32, 9}, // rounded up
		{0, 4, 1},   // at least one
		{100, 0, 1}, // a limit below one still gives one
		{16, 16, 2},
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
	n, chosen := Set(12, func(string) string { return "" })
	if !chosen || n != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("Set(12) with 4 CPUs: got (%d, %v), GOMAXPROCS %d; want (2, true) and 2", n, chosen, runtime.GOMAXPROCS(0))
	}
}

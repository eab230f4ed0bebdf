package state

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestRadixSortMatchesComparison(t *testing.T) {
	jobs := make([]*job, 5000)
	for i := range jobs {
		// Few distinct values, negative ones and ties, to exercise every
		// pass and the tie-break on id.
		jobs[i] = &job{id: strings.Repeat("x", i%3) + string(rune('a'+i%26)) + strconv.Itoa(i%1000)}
		jobs[i].started = float64(i%17) * 1.5
		jobs[i].stages[stExec].dur = float64((i*7919)%101) - 50
	}
	entries := make([]sortEntry, len(jobs))
	for i, j := range jobs {
		f, _ := numericKey(SortExecution, j)
		entries[i] = sortEntry{key: orderedBits(f), started: orderedBits(j.started), j: j}
	}
	want := slices.Clone(entries)
	slices.SortFunc(want, compareEntries)
	radixSort(entries, make([]sortEntry, len(entries)), new([16][256]int))
	for i := range want {
		if entries[i].j != want[i].j {
			t.Fatalf("entry %d: %+v, want %+v", i, *entries[i].j, *want[i].j)
		}
	}
	for _, pair := range [][2]float64{{-1, 1}, {-2, -1}, {0, 1e-300}, {1, 1e300}, {-1e300, -1}} {
		if orderedBits(pair[0]) >= orderedBits(pair[1]) {
			t.Errorf("orderedBits(%v) >= orderedBits(%v)", pair[0], pair[1])
		}
	}
}

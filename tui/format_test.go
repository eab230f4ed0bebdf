package tui

import (
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

func TestFmtDur(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-time.Second, "0s"}, {77 * time.Microsecond, "77µs"}, {850 * time.Millisecond, "850ms"},
		{3250 * time.Millisecond, "3.25s"}, {12500 * time.Millisecond, "12.5s"}, {245 * time.Second, "4m05s"},
		{62 * time.Minute, "1h02m"}, {76 * time.Hour, "3d04h"},
	}
	for _, tc := range cases {
		if got := fmtDur(tc.d); got != tc.want {
			t.Errorf("fmtDur(%s) = %q, want %q", tc.d, got, tc.want)
		}
		if n := ansi.StringWidth(fmtDur(tc.d)); n > 6 {
			t.Errorf("fmtDur(%s) is %d wide", tc.d, n)
		}
	}
}

func TestFmtBytesAndCounts(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{fmtBytes(0), "0B"}, {fmtBytes(1023), "1023B"}, {fmtBytes(4096), "4.0KiB"}, {fmtBytes(150 << 20), "150MiB"},
		{fmtBytes(3 << 29), "1.5GiB"}, {fmtRate(0), "0B/s"}, {fmtRate(2048), "2.0KiB/s"},
		{fmtCount(99999), "99999"}, {fmtCount(123456), "123k"}, {fmtCount(12345678), "12M"},
		{fmtAge(59 * time.Second), "59s"}, {fmtAge(3 * time.Hour), "3h"}, {fmtFloat(1.25), "1.2"}, {fmtFloat(250), "250"},
		{shortID("3f2a1b4c-7d1e"), "3f2a1b4c"}, {shortID("x"), "x"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestFit(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{fit("abc", 5), "abc  "}, {fit("abcdef", 4), "abc…"}, {fit("abc", 0), ""},
		{fitRight("ab", 4), "  ab"}, {fitPlain("abcdef", 3, false), "ab…"}, {fitPlain("ab", 4, true), "  ab"},
		{fitPlain("żółw-żółw", 5, false), "żółw…"}, {fitPlain("x", 1, false), "x"}, {fitPlain("xy", 1, false), "…"},
		{ansi.Strip(fit("\x1b[1mbold\x1b[m text", 6)), "bold …"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestLayoutCols(t *testing.T) {
	cols := []col{{w: 4, flex: 1, max: 10}, {w: 3}, {w: 5, drop: 1}, {w: 2, flex: 1}}
	cases := []struct {
		width int
		want  []int
	}{
		{1 + 4 + 3 + 5 + 2 + 3, []int{4, 3, 5, 2}}, // just fits
		{1 + 4 + 3 + 5 + 2 + 2, []int{7, 3, 0, 4}}, // one short: the droppable one goes, its room shared
		{40, []int{10, 3, 5, 18}},                  // spare width to the flexible ones, capped
		{8, []int{4, 3, 0, 2}},                     // too narrow: what cannot be dropped stays
	}
	for _, tc := range cases {
		got := layoutCols(cols, tc.width, nil)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("width %d: %v, want %v", tc.width, got, tc.want)
				break
			}
		}
	}
}

package runner

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestTailWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{name: "empty", size: 4, writes: nil, want: ""},
		{name: "under capacity", size: 8, writes: []string{"ab", "cd"}, want: "abcd"},
		{name: "exactly full", size: 4, writes: []string{"ab", "cd"}, want: "abcd"},
		{name: "one byte over", size: 4, writes: []string{"abcde"}, want: "bcde"},
		{name: "wrap across writes", size: 4, writes: []string{"abc", "def"}, want: "cdef"},
		{name: "wrap at end of buffer", size: 4, writes: []string{"abcd", "e"}, want: "bcde"},
		{name: "write larger than buffer", size: 4, writes: []string{"ab", "0123456789"}, want: "6789"},
		{name: "write exactly buffer size after wrap", size: 4, writes: []string{"abc", "wxyz"}, want: "wxyz"},
		{name: "many small writes", size: 3, writes: []string{"a", "b", "c", "d", "e", "f", "g"}, want: "efg"},
		{name: "empty writes", size: 3, writes: []string{"", "ab", "", "cd", ""}, want: "bcd"},
		{name: "zero capacity", size: 0, writes: []string{"abc"}, want: ""},
		{name: "negative capacity", size: -5, writes: []string{"abc"}, want: ""},
		{name: "capacity one", size: 1, writes: []string{"abc", "d"}, want: "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tail := NewTail(tt.size)
			var total int64
			for _, w := range tt.writes {
				n, err := tail.Write([]byte(w))
				if n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
				}
				total += int64(len(w))
			}
			if got := string(tail.Bytes()); got != tt.want {
				t.Errorf("Bytes() = %q, want %q", got, tt.want)
			}
			if got := tail.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := tail.Total(); got != total {
				t.Errorf("Total() = %d, want %d", got, total)
			}
		})
	}
}

// TestTailMatchesNaive compares the ring buffer with keeping everything and
// slicing, over many write patterns.
func TestTailMatchesNaive(t *testing.T) {
	t.Parallel()
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	for size := 1; size <= 17; size++ {
		for chunk := 1; chunk <= 23; chunk++ {
			tail := NewTail(size)
			var all []byte
			for off := 0; off < len(data); off += chunk {
				p := data[off:min(off+chunk, len(data))]
				_, _ = tail.Write(p)
				all = append(all, p...)
				want := all[max(0, len(all)-size):]
				if got := tail.Bytes(); !bytes.Equal(got, want) {
					t.Fatalf("size %d chunk %d after %d bytes: Bytes() = %q, want %q", size, chunk, len(all), got, want)
				}
			}
		}
	}
}

func TestTailUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{name: "whole runes kept", size: 5, writes: []string{"xé€"}, want: "é€"},
		{name: "cut inside 2-byte rune before 3-byte rune", size: 4, writes: []string{"xé€"}, want: "€"},
		{name: "cut inside 2-byte rune", size: 2, writes: []string{"aéb"}, want: "b"},
		{name: "cut before 2-byte rune", size: 3, writes: []string{"aaéb"}, want: "éb"},
		{name: "cut inside 3-byte rune", size: 4, writes: []string{"a€€"}, want: "€"},
		{name: "cut inside 4-byte rune", size: 5, writes: []string{"😀😀"}, want: "😀"},
		{name: "cut leaves only continuation bytes", size: 2, writes: []string{"😀"}, want: ""},
		{name: "no cut keeps a leading continuation byte as U+FFFD", size: 8, writes: []string{"\x80ab"}, want: "\uFFFDab"},
		{name: "invalid byte replaced", size: 8, writes: []string{"a\xffb"}, want: "a\uFFFDb"},
		{name: "invalid run replaced once", size: 8, writes: []string{"a\xff\xfeb"}, want: "a\uFFFDb"},
		{name: "truncated rune at the end", size: 8, writes: []string{"ab\xe2\x82"}, want: "ab\uFFFD"},
		{name: "rune split across writes", size: 8, writes: []string{"a\xe2", "\x82\xac"}, want: "a€"},
		{name: "cut after more than 3 continuation bytes", size: 5, writes: []string{"a\x80\x80\x80\x80b"}, want: "\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tail := NewTail(tt.size)
			for _, w := range tt.writes {
				_, _ = tail.Write([]byte(w))
			}
			got := tail.String()
			if !utf8.ValidString(got) {
				t.Errorf("String() = %q is not valid UTF-8", got)
			}
			if got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTailConcurrentReads(t *testing.T) {
	t.Parallel()
	tail := NewTail(64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 1000 {
			_, _ = tail.Write([]byte("0123456789"))
		}
	}()
	go func() {
		defer wg.Done()
		for range 1000 {
			if b := tail.Bytes(); len(b) > 64 {
				t.Errorf("Bytes() has %d bytes, more than 64", len(b))
				return
			}
			_ = tail.String()
		}
	}()
	wg.Wait()
	if got, want := tail.Total(), int64(10000); got != want {
		t.Errorf("Total() = %d, want %d", got, want)
	}
	want := strings.Repeat("0123456789", 7)[6:]
	if got := tail.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestTailIsWriter(t *testing.T) {
	t.Parallel()
	var w io.Writer = NewTail(5)
	n, err := io.Copy(w, strings.NewReader(strings.Repeat("x", 100000)+"hello"))
	if n != 100005 || err != nil {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	if got := w.(*Tail).String(); got != "hello" {
		t.Errorf("String() = %q, want %q", got, "hello")
	}
}

func BenchmarkTailWrite(b *testing.B) {
	tail := NewTail(64 << 10)
	p := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB, exec's copy size
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = tail.Write(p)
	}
}

// TestTailMatchesReference writes random chunks and compares with the last
// n bytes of everything written, across the growth and ring phases.
func TestTailMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 512, 1000, 4096} {
		tail := NewTail(n)
		var all []byte
		for i := range 300 {
			chunk := make([]byte, rng.IntN(n*2+3))
			for j := range chunk {
				chunk[j] = byte(i + j)
			}
			if rng.IntN(2) == 0 {
				tail.ReadFrom(bytes.NewReader(chunk))
			} else {
				tail.Write(chunk)
			}
			all = append(all, chunk...)
			want := all[max(0, len(all)-n):]
			if got := tail.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("n=%d after %d writes: kept %d bytes, want the last %d", n, i+1, len(got), len(want))
			}
			if tail.Total() != int64(len(all)) {
				t.Fatalf("total %d, want %d", tail.Total(), len(all))
			}
		}
		if c := cap(tail.buf); c > n {
			t.Errorf("n=%d: buffer capacity %d over the limit", n, c)
		}
	}
}

func TestTailSmallOutputAllocatesLittle(t *testing.T) {
	tail := NewTail(64 << 10)
	tail.Write([]byte("hello\n"))
	if c := cap(tail.buf); c > 1024 {
		t.Errorf("a 6-byte output holds a %d-byte buffer", c)
	}
}

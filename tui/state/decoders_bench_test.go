//go:build decoderbench

package state_test

import (
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// BenchmarkApplyDecoders is BenchmarkApply (the whole model's ingestion)
// with each decoder of decoders_test.go in turn:
//
//	go test -tags decoderbench -run '^$' -bench ApplyDecoders -count 5 -benchtime 2s ./tui/state/
func BenchmarkApplyDecoders(b *testing.B) {
	for _, name := range state.DecoderNames {
		b.Run(name, func(b *testing.B) {
			defer state.UseDecoder(name)()
			benchmarkApply(b, false)
		})
	}
}

// BenchmarkDecoders is the decoding step alone, on the bodies of
// BenchmarkApply.
func BenchmarkDecoders(b *testing.B) {
	s := newStream("job-")
	var msgs []eventbus.Message
	for len(msgs) < 100_000 {
		msgs = s.job(msgs)
	}
	for _, name := range state.DecoderNames {
		b.Run(name, func(b *testing.B) {
			decode := state.DecodeWith(name)
			b.ReportAllocs()
			cpu := cpuTime()
			for i := range b.N {
				if m, inv := decode(msgs[i%len(msgs)].Body); m != nil || inv != nil {
					b.Fatal(m, inv)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if cpu > 0 {
				b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "events/cpu-s")
			}
		})
	}
}

package process_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/firmbanking"
)

// BenchmarkPayoutThroughput: withdrawals from request to settlement, with a
// provider that takes 200ms (wall clock) to accept each transfer, on real
// reactor loops over an embedded JetStream: the money reactor records each
// payout, the payouts reactor sends it with the given concurrency. One op
// is one payout; payouts/s is the throughput. Run with a fixed count, e.g.
//
//	go test -run '^$' -bench PayoutThroughput -benchtime 48x ./process/
func BenchmarkPayoutThroughput(b *testing.B) {
	for _, concurrency := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			f := newFixture(b, options{jetstream: true, bank: firmbanking.FakeOptions{Latency: 200 * time.Millisecond}, log: zerolog.Nop()})
			f.credit(b, "u", int64(b.N)*1000)
			// The withdrawals are recorded before the clock starts; the
			// reactors start with it.
			for i := range b.N {
				if err := f.withdraw("u", 1000, "po-"+strconv.Itoa(i), "111"); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			f.moneyReactor(b, 1)
			payouts := f.payoutsReactor(b, 1, concurrency)
			want := uint64(2 * b.N) // each payout's requested commit, then its settled one
			for payouts.Stats().Processed < want {
				if st := payouts.Stats(); st.Retried+st.DeadLettered > 0 {
					b.Fatalf("payouts reactor %+v", st)
				}
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if n := len(f.bank.Sent()); n != b.N {
				b.Fatalf("%d transfers sent, want %d", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "payouts/s")
		})
	}
}

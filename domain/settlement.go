package domain

import (
	"sync"
	"time"
)

// MaxFeeBps is the highest platform fee, in basis points: 10000 is 100%.
const MaxFeeBps = 10000

// DateLayout is how settlement dates are written: a calendar date.
const DateLayout = "2006-01-02"

// Fee is the platform fee on a store payment of amount at bps basis points
// (1/100 of a percent), rounded down to the minor unit:
// floor(amount × bps / 10000). It is exact for every amount up to
// MaxAmount and bps up to MaxFeeBps (no intermediate overflow). amount and
// bps must not be negative.
func Fee(amount int64, bps int) int64 {
	b := int64(bps)
	return amount/10000*b + amount%10000*b/10000
}

// seoul is the Asia/Seoul time zone, loaded once. Without a time zone
// database on the machine it is a fixed UTC+09:00, which is the same for
// every date since 1988 (Korea has kept no daylight saving time since).
var seoul = sync.OnceValue(func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Seoul"); err == nil {
		return loc
	}
	return time.FixedZone("KST", 9*60*60)
})

// Seoul returns the Asia/Seoul time zone, in which settlement dates are
// counted.
func Seoul() *time.Location { return seoul() }

// SettlementDate is when a store payment made at paidAt is settled to its
// distributor, as YYYY-MM-DD: the payment's business day plus
// businessDays business days. The business day of a payment is its
// calendar date in Asia/Seoul, or the following Monday for a payment made
// on a Saturday or a Sunday; business days are Monday to Friday. Public
// holidays are not modelled: a settlement date may fall on one.
//
// With one business day (D+1), a payment on Thursday settles on Friday, one
// on Friday on Monday, and one on Saturday or Sunday on Tuesday (its
// business day is Monday). With 0 (D+0) a payment settles on its business
// day. A negative businessDays counts as 0.
func SettlementDate(paidAt time.Time, businessDays int) string {
	y, m, d := paidAt.In(Seoul()).Date()
	day := time.Date(y, m, d, 12, 0, 0, 0, time.UTC) // noon: no calendar arithmetic crosses midnight
	for weekend(day) {
		day = day.AddDate(0, 0, 1)
	}
	for i := 0; i < businessDays; i++ {
		day = day.AddDate(0, 0, 1)
		for weekend(day) {
			day = day.AddDate(0, 0, 1)
		}
	}
	return day.Format(DateLayout)
}

func weekend(t time.Time) bool { return t.Weekday() == time.Saturday || t.Weekday() == time.Sunday }

package domain

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
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
// businessDays business days. Business days are Monday to Friday except
// the dates of holidays. The business day of a payment is its calendar
// date in Asia/Seoul, or the first business day after it for a payment
// made on a Saturday, a Sunday or a holiday. With the zero Holidays only
// weekends are skipped.
//
// With one business day (D+1), a payment on Thursday settles on Friday, one
// on Friday on Monday, and one on Saturday or Sunday on Tuesday (its
// business day is Monday); with Monday a holiday, they settle a day later.
// With 0 (D+0) a payment settles on its business day. A negative
// businessDays counts as 0.
func SettlementDate(paidAt time.Time, businessDays int, holidays Holidays) string {
	y, m, d := paidAt.In(Seoul()).Date()
	day := time.Date(y, m, d, 12, 0, 0, 0, time.UTC) // noon: no calendar arithmetic crosses midnight
	for !holidays.businessDay(day) {
		day = day.AddDate(0, 0, 1)
	}
	for i := 0; i < businessDays; i++ {
		day = day.AddDate(0, 0, 1)
		for !holidays.businessDay(day) {
			day = day.AddDate(0, 0, 1)
		}
	}
	return day.Format(DateLayout)
}

func weekend(t time.Time) bool { return t.Weekday() == time.Saturday || t.Weekday() == time.Sunday }

// Holidays are the calendar dates (Asia/Seoul) besides weekends on which
// banks move no money: 설날, 추석, substitute days, election days. The
// operator supplies them (ParseHolidays); the zero value has none. They are
// a value, not a setting of the package: a settlement date, once recorded,
// is never computed again.
type Holidays struct {
	days map[string]struct{} // YYYY-MM-DD
}

// Has reports whether date, YYYY-MM-DD, is a holiday.
func (h Holidays) Has(date string) bool {
	_, ok := h.days[date]
	return ok
}

// Len is how many dates h holds.
func (h Holidays) Len() int { return len(h.days) }

// Dates are h's dates, oldest first.
func (h Holidays) Dates() []string {
	return slices.Sorted(maps.Keys(h.days))
}

// businessDay reports whether day (a date at noon UTC) is neither a
// weekend nor a holiday.
func (h Holidays) businessDay(day time.Time) bool {
	return !weekend(day) && (len(h.days) == 0 || !h.Has(day.Format(DateLayout)))
}

// ParseHolidays reads a holiday calendar: one YYYY-MM-DD date a line;
// blank lines and comments from '#' to the end of a line are ignored, and
// so is a date given twice. A line that is not one real date is an error
// that names its line number.
func ParseHolidays(r io.Reader) (Holidays, error) {
	h := Holidays{days: map[string]struct{}{}}
	sc := bufio.NewScanner(r)
	n := 1
	for ; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a byte order mark some editors write
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if _, err := time.Parse(DateLayout, line); err != nil {
			return Holidays{}, fmt.Errorf("line %d: %q is not a date YYYY-MM-DD", n, line)
		}
		h.days[line] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return Holidays{}, fmt.Errorf("line %d: %w", n, err) // a line too long, or the file unreadable
	}
	return h, nil
}

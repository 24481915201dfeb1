package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// holidays is the calendar of dates, which the test gives correctly.
func holidays(t *testing.T, dates ...string) domain.Holidays {
	t.Helper()
	h, err := domain.ParseHolidays(strings.NewReader(strings.Join(dates, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSettlementDateSkipsHolidays(t *testing.T) {
	kst := time.FixedZone("KST", 9*60*60)
	at := func(y int, m time.Month, d, hour int) time.Time { return time.Date(y, m, d, hour, 0, 0, 0, kst) }
	// March 2025: Wed 12, Thu 13, Fri 14, Sat 15, Sun 16, Mon 17, Tue 18.
	// 설날 2025: Mon 01-27 (a temporary holiday) to Thu 01-30 (the
	// substitute day), after the weekend of 01-25/26. 추석 2025: Fri 10-03
	// (개천절), Sun 10-05 to Tue 10-07, Wed 10-08 (substitute), Thu 10-09
	// (한글날).
	seollal := []string{"2025-01-27", "2025-01-28", "2025-01-29", "2025-01-30"}
	chuseok := []string{"2025-10-03", "2025-10-05", "2025-10-06", "2025-10-07", "2025-10-08", "2025-10-09"}
	tests := []struct {
		name     string
		paidAt   time.Time
		days     int
		holidays []string
		want     string
	}{
		{"a weekday holiday is skipped for D+1", at(2025, 3, 13, 10), 1, []string{"2025-03-14"}, "2025-03-17"},
		{"D+2 over a holiday", at(2025, 3, 12, 10), 2, []string{"2025-03-13"}, "2025-03-17"},
		{"paid on a holiday: its business day is the next one", at(2025, 3, 12, 10), 1, []string{"2025-03-12"}, "2025-03-14"},
		{"paid on a holiday, D+0", at(2025, 3, 12, 10), 0, []string{"2025-03-12"}, "2025-03-13"},
		{"paid on a Friday holiday, D+0: Monday", at(2025, 3, 14, 10), 0, []string{"2025-03-14"}, "2025-03-17"},
		{"paid on a Saturday before a Monday holiday", at(2025, 3, 15, 10), 0, []string{"2025-03-17"}, "2025-03-18"},
		{"D+0 on a business day is that day", at(2025, 3, 13, 10), 0, []string{"2025-03-14"}, "2025-03-13"},
		{"설날: the Friday before, D+1", at(2025, 1, 24, 10), 1, seollal, "2025-01-31"},
		{"설날: paid on the Saturday before, D+0", at(2025, 1, 25, 10), 0, seollal, "2025-01-31"},
		{"설날: paid on the Saturday before, D+1", at(2025, 1, 25, 10), 1, seollal, "2025-02-03"},
		{"설날: paid during it, D+2", at(2025, 1, 28, 10), 2, seollal, "2025-02-04"},
		{"추석: the Thursday before, D+1", at(2025, 10, 2, 10), 1, chuseok, "2025-10-10"},
		{"추석: paid on 개천절, D+0", at(2025, 10, 3, 10), 0, chuseok, "2025-10-10"},
		{"a holiday on a weekend changes nothing", at(2025, 3, 14, 10), 1, []string{"2025-03-15", "2025-03-16"}, "2025-03-17"},
		{"a holiday after the date changes nothing", at(2025, 3, 13, 10), 1, []string{"2025-03-17"}, "2025-03-14"},
		// The holiday is Seoul's date: 15:00 UTC on the 11th is midnight
		// of the 12th in Seoul.
		{"a holiday in Seoul, the day before in UTC", time.Date(2025, 3, 11, 15, 0, 0, 0, time.UTC), 0, []string{"2025-03-12"}, "2025-03-13"},
		{"the day before a holiday in Seoul", time.Date(2025, 3, 11, 14, 59, 0, 0, time.UTC), 0, []string{"2025-03-12"}, "2025-03-11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.SettlementDate(tt.paidAt, tt.days, holidays(t, tt.holidays...)); got != tt.want {
				t.Errorf("SettlementDate(%s, %d, %v) = %s, want %s", tt.paidAt, tt.days, tt.holidays, got, tt.want)
			}
		})
	}
}

// TestSettlementDateAvoidsHolidays: for every hour of four weeks with
// every Wednesday and the 2nd to the 4th a holiday, the settlement date is
// neither a weekend nor a holiday, one more business day settles later,
// and the zero calendar gives what weekends alone give.
func TestSettlementDateAvoidsHolidays(t *testing.T) {
	h := holidays(t, "2025-03-03", "2025-03-04", "2025-03-05", "2025-03-12", "2025-03-19", "2025-03-26", "2025-04-02")
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for hr := range 28 * 24 {
		paidAt := start.Add(time.Duration(hr) * time.Hour)
		prev := ""
		for days := range 8 {
			got := domain.SettlementDate(paidAt, days, h)
			d, err := time.Parse(domain.DateLayout, got)
			if err != nil {
				t.Fatal(err)
			}
			if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday || h.Has(got) {
				t.Fatalf("SettlementDate(%s, %d) = %s, a %s or a holiday", paidAt, days, got, wd)
			}
			if got <= prev {
				t.Fatalf("SettlementDate(%s, %d) = %s, not after D+%d %s", paidAt, days, got, days-1, prev)
			}
			prev = got
		}
	}
}

// The zero calendar has no holidays: SettlementDate is what it was before
// there were calendars, and so are the table's cases in
// TestSettlementDate.
func TestZeroHolidays(t *testing.T) {
	var zero domain.Holidays
	if zero.Len() != 0 || zero.Has("2025-01-01") {
		t.Errorf("the zero calendar holds %d dates", zero.Len())
	}
	empty := holidays(t)
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for hr := range 14 * 24 {
		paidAt := start.Add(time.Duration(hr) * time.Hour)
		for days := range 4 {
			if a, b := domain.SettlementDate(paidAt, days, zero), domain.SettlementDate(paidAt, days, empty); a != b {
				t.Fatalf("SettlementDate(%s, %d): %s with the zero calendar, %s with an empty file", paidAt, days, a, b)
			}
		}
	}
}

func TestParseHolidays(t *testing.T) {
	file := "\ufeff# Bank holidays, Asia/Seoul\n" +
		"\n" +
		"2025-01-27   # 임시공휴일\n" +
		"2025-01-28\t#설날\n" +
		"  2025-01-29  \r\n" +
		"2025-01-30#대체공휴일\n" +
		"   # indented comment\n" +
		"2025-01-28\n" + // a repeat
		"2025-05-01 # 근로자의 날"
	h, err := domain.ParseHolidays(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(h.Dates(), ","), "2025-01-27,2025-01-28,2025-01-29,2025-01-30,2025-05-01"; got != want {
		t.Errorf("dates %s, want %s", got, want)
	}
	if h.Len() != 5 || !h.Has("2025-05-01") || h.Has("2025-01-31") {
		t.Errorf("calendar %v (%d dates)", h.Dates(), h.Len())
	}

	for _, tc := range []struct {
		name, file, want string
	}{
		{"a date that does not exist", "2025-01-27\n2025-02-30\n", `line 2: "2025-02-30"`},
		{"the 29th of February of a common year", "# x\n\n2025-02-29 # no\n", `line 3: "2025-02-29"`},
		{"month 13", "2025-13-01", `line 1: "2025-13-01"`},
		{"no leading zeros", "2025-01-27\n2025-1-28", `line 2: "2025-1-28"`},
		{"another layout", "2025/01/27", `line 1: "2025/01/27"`},
		{"two dates on a line", "2025-01-27 2025-01-28", `line 1: "2025-01-27 2025-01-28"`},
		{"a word", "\n\n\nseollal\n", `line 4: "seollal"`},
		{"a time", "2025-01-27T00:00:00+09:00", `line 1: "2025-01-27T00:00:00+09:00"`},
		{"a line too long", "2025-01-27\n" + strings.Repeat("#", 1<<17), "line 2: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := domain.ParseHolidays(strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %s", err, tc.want)
			}
		})
	}
}

// A payment made during a holiday block and recorded after it settles no
// earlier than the business day it is recorded on, counted with the same
// calendar: recorded on a holiday, on the next business day.
func TestStorePaymentSettlesOnTheHolidayCalendar(t *testing.T) {
	// t0 is Friday 2025-03-14 18:26 in Seoul; Monday 03-17 and Tuesday
	// 03-18 are holidays.
	h := holidays(t, "2025-03-17", "2025-03-18")
	f := newLinkFlow(t)
	f.issue(100_000)
	pay := func(id domain.DepositID, days int, recorded time.Time) domain.StorePaymentReceived {
		return f.do(domain.DecideStorePayment(f.link, domain.StorePayment{DepositID: id, Amount: 1_000, PaidAt: f.at, CollectAccount: collect.Number,
			FeeBps: 100, SettlementDays: days, Holidays: h, Now: recorded}))[0].(domain.StorePaymentReceived)
	}
	if p := pay("dep_1", 1, f.at); p.SettlementDate != "2025-03-19" {
		t.Errorf("Friday D+1 over two holidays settles %s, want Wednesday 03-19", p.SettlementDate)
	}
	if p := pay("dep_2", 0, f.at); p.SettlementDate != "2025-03-14" {
		t.Errorf("Friday D+0 settles %s, want 03-14", p.SettlementDate)
	}
	// Friday's D+0, recorded on the Monday holiday: on Wednesday, the
	// first business day of the recording.
	if p := pay("dep_3", 0, t0.Add(72*time.Hour)); p.SettlementDate != "2025-03-19" {
		t.Errorf("a payment recorded on a holiday settles %s, want Wednesday 03-19", p.SettlementDate)
	}
	// Without the calendar, as before.
	p := f.do(domain.DecideStorePayment(f.link, domain.StorePayment{DepositID: "dep_4", Amount: 1_000, PaidAt: f.at, CollectAccount: collect.Number,
		FeeBps: 100, SettlementDays: 1, Now: f.at}))[0].(domain.StorePaymentReceived)
	if p.SettlementDate != "2025-03-17" {
		t.Errorf("Friday D+1 without a calendar settles %s, want Monday 03-17", p.SettlementDate)
	}
}

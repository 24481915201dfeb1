package domain

import "time"

// TimeLayout is how bankbook writes times: RFC 3339, UTC, always with
// microseconds, so that clients see fractional seconds even when they are 0.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// FormatTime formats t in UTC with TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

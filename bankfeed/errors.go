package bankfeed

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. Compare with errors.Is; the errors returned by this
// package wrap them with context.
var (
	// ErrInvalidTransaction matches every *FieldError: a transaction that
	// fails Validate.
	ErrInvalidTransaction = errors.New("bankfeed: invalid transaction")

	// ErrConflictingDuplicate is returned when one bank_txn_id appears twice
	// with different contents (in a CSV file or in one scan result). An exact
	// repeat is not an error.
	ErrConflictingDuplicate = errors.New("bankfeed: bank_txn_id repeated with different contents")

	// ErrMissingHeader is returned by ParseCSV for an input without a header
	// row (empty, or only a byte-order mark and blank lines).
	ErrMissingHeader = errors.New("bankfeed: CSV has no header row")

	// ErrBadHeader matches the *LineError values (line 1) that ParseCSV
	// returns for an unknown, missing or repeated header column.
	ErrBadHeader = errors.New("bankfeed: bad CSV header")

	// ErrMalformedCSV matches the *LineError values that ParseCSV returns for
	// a row that is not valid CSV (a stray quote, a wrong number of fields).
	ErrMalformedCSV = errors.New("bankfeed: malformed CSV")

	// ErrBadResponse is returned by HTTPSource when the provider answered 200
	// with a body that is not the documented JSON, or that carries an invalid
	// transaction. It is not retried within a Scan.
	ErrBadResponse = errors.New("bankfeed: bad response from provider")

	// ErrUnauthorized matches a *StatusError for HTTP 401 or 403: the token is
	// wrong or expired. It is permanent; retrying does not help.
	ErrUnauthorized = errors.New("bankfeed: provider refused the credentials")

	// ErrGaveUp is returned by HTTPSource when every attempt failed with a
	// transient error, or when the provider asked to wait longer than
	// MaxRetryAfter. The error also wraps the last attempt's error.
	ErrGaveUp = errors.New("bankfeed: gave up")

	// ErrOutage is returned by SimBank.Scan while a simulated provider outage
	// (FailNext) lasts. It is transient.
	ErrOutage = errors.New("bankfeed: simulated provider outage")
)

// WaitError is HTTPSource's answer when the provider asked to wait longer
// than MaxRetryAfter: Scanner.Run asks it again only once Wait has passed.
// It matches ErrGaveUp.
type WaitError struct {
	Wait time.Duration // what the provider asked for
	Err  error
}

func (e *WaitError) Error() string { return e.Err.Error() }
func (e *WaitError) Unwrap() error { return e.Err }

// FieldError reports one field of a transaction that failed validation. It
// matches ErrInvalidTransaction.
type FieldError struct {
	Field  string // the JSON / CSV column name, e.g. "amount"
	Reason string // what is wrong, e.g. "must be greater than 0"
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidTransaction.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidTransaction }

// LineError is one problem in a CSV statement: Line is the 1-based line of the
// file (the header is line 1; for a field that spans lines, the line on which
// it starts), Column the header name of the offending column, or "" when the
// problem concerns the whole row.
type LineError struct {
	Line   int
	Column string
	Err    error
}

func (e *LineError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	if fe, ok := e.Err.(*FieldError); ok && fe.Field == e.Column {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Column, fe.Reason)
	}
	// An unknown column is the file's own text: anything but a plain name
	// is shown quoted, so that no control character of a file reaches the
	// operator's terminal.
	column := e.Column
	if strings.IndexFunc(column, notPlain) >= 0 {
		column = strconv.Quote(column)
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, column, e.Err)
}

// notPlain reports whether r has no place in a plain column name.
func notPlain(r rune) bool {
	return r >= utf8.RuneSelf || !(r == '_' || r == '-' || r == ' ' || unicode.IsLetter(r) || unicode.IsDigit(r))
}

// Unwrap returns the underlying error.
func (e *LineError) Unwrap() error { return e.Err }

// StatusError is an HTTP answer other than 200 from an account-scan provider.
// It matches ErrUnauthorized for 401 and 403.
type StatusError struct {
	StatusCode int
	// Body is the start of the response body (at most 512 bytes), for logs.
	Body string
	// RetryAfter is the wait the provider asked for in its Retry-After
	// header, or 0 when there was none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "provider answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	return b.String()
}

// WithheldText is the provider's own words in the error (its body), which
// a part's status does not show (supervisor.Text).
func (e *StatusError) WithheldText() string { return e.Body }

// Is reports whether target is ErrUnauthorized and the status is 401 or 403.
func (e *StatusError) Is(target error) bool {
	return target == ErrUnauthorized && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// Temporary reports whether the status is worth retrying: 408 (request
// timeout), 429 (too many requests) and every 5xx. Every other status is
// permanent.
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests ||
		(e.StatusCode >= 500 && e.StatusCode <= 599)
}

package api

// Written is embedded in every command reply: the consistency token.
type Written struct {
	// Seq is the stream sequence of the commit the command wrote, or of the
	// commit it found when it had already taken effect; 0 when the command
	// writes nothing to the event stream.
	Seq Seq `json:"seq"`
}

// WrittenSeq returns the reply's consistency token.
func (w Written) WrittenSeq() Seq { return w.Seq }

// ReadAfter is embedded in every query request.
type ReadAfter struct {
	// MinSeq asks the engine to answer only once its read models have applied
	// at least this sequence (the Seq of an earlier command reply), waiting a
	// bounded time and then answering 503 not_caught_up.
	MinSeq Seq `json:"min_seq,omitempty"`
}

// ReadAfterSeq returns the sequence the query must see.
func (r ReadAfter) ReadAfterSeq() Seq { return r.MinSeq }

// PageRequest is a paginated query: at most Limit items (default 50, at
// most 500) after Cursor.
type PageRequest struct {
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	ReadAfter
}

// MaxCursorLength is the longest page cursor accepted.
const MaxCursorLength = 1024

// Validate checks the request. A cursor is opaque, but it is always at most
// MaxCursorLength characters of printable ASCII; the query refuses one it
// did not hand out.
func (p PageRequest) Validate() error {
	if p.Limit < 0 || p.Limit > 500 {
		return invalid("limit", "must be between 1 and 500 (0 or absent: the query's default)")
	}
	return validateCursor(p.Cursor)
}

// validateCursor refuses what cannot be a cursor this engine handed out.
func validateCursor(cursor string) error {
	if len(cursor) > MaxCursorLength || !printableASCII(cursor) {
		return invalid("cursor", "not a cursor this query handed out")
	}
	return nil
}

// PageLimit is Limit with the default applied.
func (p PageRequest) PageLimit() int {
	if p.Limit == 0 {
		return 50
	}
	return p.Limit
}

// MaxUnpaged is how many items a list that the external contract gives
// without paging (bill.active, payment.by_distributor, payment.by_store,
// audit.history) answers at most when the request names no limit. The
// reply's size bounds such a page first (MaxPageBytes): the whole list
// unless it is larger than one NATS message carries, and then a first page
// with next_cursor.
const MaxUnpaged = 100_000

// MaxPageBytes bounds the encoded items of one page of a list, so that the
// reply, with its envelope and headers, stays under NATS's 1 MiB payload
// limit however large the items are. A page always holds at least one item.
const MaxPageBytes = 960 << 10

// WholeLimit is Limit, or MaxUnpaged when the request names none: the limit
// of the lists the external contract gives without paging.
func (p PageRequest) WholeLimit() int {
	if p.Limit == 0 {
		return MaxUnpaged
	}
	return p.Limit
}

// EmptyRequest is the body of queries without parameters ({} or empty).
type EmptyRequest struct {
	ReadAfter
}

// Validate accepts everything.
func (EmptyRequest) Validate() error { return nil }

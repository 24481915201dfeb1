package projections

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/bankbook/bankbook/api"
)

// pageBytes is the encoded size of the items a page of a list holds so far,
// which maxPageBytes bounds.
type pageBytes int

// maxPageBytes is api.MaxPageBytes; tests make it smaller.
var maxPageBytes = api.MaxPageBytes

// fits reports whether an item of size encoded bytes still fits on a page
// that holds n items, and counts it if so. The first item always fits.
func (p *pageBytes) fits(n, size int) bool {
	size++ // and a comma
	if n > 0 && int(*p)+size > maxPageBytes {
		return false
	}
	*p += pageBytes(size)
	return true
}

// fitsItem is fits for item, measured by its JSON encoding (as the reply
// will hold it).
func (p *pageBytes) fitsItem(n int, item any) (bool, error) {
	enc, err := json.Marshal(item)
	if err != nil {
		return false, err
	}
	return p.fits(n, len(enc)), nil
}

// cursorAfter decodes a page cursor: the hex of the key (or the rest of
// the key) the previous page ended on, "" for the first page. A cursor
// that is not hex, or that valid (if not nil) says no page of the list
// hands out, is ErrBadCursor.
func cursorAfter(cursor string, valid func(after []byte) bool) ([]byte, error) {
	after, err := hex.DecodeString(cursor)
	if err != nil || (len(after) > 0 && valid != nil && !valid(after)) {
		return nil, fmt.Errorf("%w: cursor", ErrBadCursor)
	}
	return after, nil
}

// sized is a cursorAfter validity check: the key rest is n bytes long.
func sized(n int) func([]byte) bool {
	return func(after []byte) bool { return len(after) == n }
}

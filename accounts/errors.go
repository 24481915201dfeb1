package accounts

import (
	"errors"

	"github.com/bankbook/bankbook/domain"
)

var (
	// ErrExhausted is returned by Allocate when every number of the
	// configured range has been handed out (or skipped; see the package
	// documentation). It is a *domain.Error of kind KindRule, code
	// "account_range_exhausted", so the API layer answers 422 without
	// knowing this package: the range is a business limit the operator
	// sets, not a failure that goes away by retrying. Links that already
	// have a number keep getting it. Widening the range (a larger To)
	// lets allocation go on.
	ErrExhausted = &domain.Error{Kind: domain.KindRule, Code: "account_range_exhausted",
		Message: "no dedicated account number is left in the configured range"}

	// ErrInvalidRange means a Config's number range, or the text given to
	// ParseRange, is not a range Directory can allocate from.
	ErrInvalidRange = errors.New("accounts: invalid number range")

	// ErrInvalidLinkID is returned for a link ID that is empty, longer than
	// 128 bytes, or holds a character other than [A-Za-z0-9_-]. Link IDs
	// are derived by the engine (domain.LinkID), so this is a bug, not bad
	// input.
	ErrInvalidLinkID = errors.New("accounts: invalid link id")

	// ErrCorrupt means an entry of the bucket holds a value this package
	// never writes (a link's number that is not digits, a number's link
	// that is not a link ID, a counter that is not a counter).
	ErrCorrupt = errors.New("accounts: corrupt directory entry")
)

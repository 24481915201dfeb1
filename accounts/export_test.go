package accounts

import "context"

// SetAfterClaim makes d call f after it claims a number for a link and
// before it writes the link's entry, so a test can run a competing
// allocation exactly there.
func SetAfterClaim(d *Directory, f func(ctx context.Context, number string)) { d.afterClaim = f }

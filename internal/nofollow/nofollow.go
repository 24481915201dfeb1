// Package nofollow gives the engine's clients of outside services (the
// chat providers, the firm-banking provider, the bank feed) an HTTP client
// that never follows a redirect.
//
// Followed, a 301, 302 or 303 turns a POST into a GET without its body,
// whose 2xx (a list, a page) can read as the request taken: a message
// recorded sent that never arrived. A 307 or 308 sends the body, a
// transfer say, to wherever the redirect points, and net/http strips only
// the standard credentials there, not an API token of another header. A
// provider's URL that redirects is a wrong URL (an http:// one moved to
// https://): its client answers the redirect as the refusal it is.
package nofollow

import "net/http"

// Client returns a copy of c (nil: http.DefaultClient) that answers every
// redirect as it is, never following it. c's own CheckRedirect does not
// apply.
func Client(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	own := *c
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &own
}

// Package simlimit is the request rate limit of bankbook's provider
// simulators (the fake account-scan provider, the fake firm-banking service,
// the chat-provider simulator): it decides whether a request is served or
// answered 429, and for how long the caller should wait.
//
// Two shapes of limit, as real providers have them:
//   - Fixed: at most Limit requests per window, windows aligned to
//     multiples of Window on the clock (every request counts, refused ones
//     included, until the window turns).
//   - Rolling: at most Limit served requests in any interval of length
//     Window ("at most N requests in any rolling one-second window"); a
//     refused request does not count.
//
// Guarantees: Allow never admits more than the limit allows; when it refuses,
// the wait it answers is positive and is exactly how long until a request
// would be admitted, provided nothing else is admitted first. A nil
// *Limiter, or one with a Limit of 0 or less, admits everything. The clock
// is the caller's (Allow takes now), so tests control it; a clock that steps
// back is tolerated. A Limiter is safe for concurrent use.
package simlimit

// Package httpretry is the retry loop of bankbook's clients of third-party
// HTTP APIs (the bank feed's HTTPSource and the firm-banking Client).
//
// Do calls an attempt function until it succeeds, fails for good, or the
// Policy says to stop. An attempt says its failure is worth another try by
// returning Retry(err) or, when the server sent Retry-After, RetryAfter(err,
// d); any other error ends Do at once and is returned unchanged.
//
// Guarantees:
//   - At most Policy.MaxAttempts attempts; before retry n (n ≥ 1) Do waits
//     the server's Retry-After if it gave one, otherwise a random
//     ("full jitter") duration in [0, min(MaxBackoff, BaseBackoff·2ⁿ⁻¹)].
//   - A Retry-After longer than Policy.MaxRetryAfter (when set) is not
//     waited for; with Policy.StopBeforeDeadline, neither is a wait that
//     would pass the context's deadline.
//   - Do never waits past the end of its context, and does not start an
//     attempt after a failed one once the context has ended.
//   - When Do stops retrying, its error is a *GiveUpError saying why, with
//     the attempts made and the last attempt's error; errors.Is and
//     errors.As see through it to that error and to the context's.
//
// Each client keeps its own error vocabulary: it maps a *GiveUpError to its
// package's sentinel errors.
package httpretry

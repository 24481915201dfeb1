// Package firmbanking sends wallet withdrawals to bank accounts through a
// firm-banking (펌뱅킹) API: a paid, slow, sometimes failing third party.
//
// It holds the Provider interface the wallet code depends on, an HTTP Client
// that implements it, Settle, which drives one transfer to its final result,
// and FakeService, a fake provider that behaves like the real ones for tests
// and demos. The package needs neither NATS nor bbolt: recording a payout's
// events around these calls is the caller's job.
//
// # Guarantees
//
// Exactly once is at-least-once plus at-most-once. The transfer ID (our payout
// ID) is the provider's idempotency key, so:
//
//   - Send may be repeated any number of times with the same Transfer — after
//     a timeout, a crash, a lost answer — and the money is sent at most once;
//     every repeat returns the transfer's current Result.
//   - The Client retries transient failures itself (network errors, attempt
//     timeouts, 5xx, 408, 409 in progress, 425, 429), with exponential backoff
//     and full jitter, honouring Retry-After (seconds or an HTTP date). After
//     Client.MaxAttempts it gives up with ErrUnavailable wrapping the last
//     cause. A context deadline that falls before the next attempt ends the
//     call at once.
//   - A Send that returns an error other than ErrInvalidTransfer,
//     ErrInvalidConfig or ErrPermanent has an unknown outcome: the provider
//     may have accepted the transfer. Never treat it as "not sent"; repeat
//     the same Transfer later (Settle does).
//   - A Send that returns ErrRefused (the transfer failed Validate, or the
//     provider answered 400) will not be carried out as sent now. An
//     earlier attempt under the same ID may still have been accepted (a
//     rule or an account changed since), so the payout can be failed and its
//     money returned only when Status answers ErrUnknownTransfer. Other
//     permanent answers (401, 403, 422, a redirect, which is never
//     followed: internal/nofollow ...) are about the caller or the ID,
//     not the transfer: they do not match ErrRefused.
//   - A transfer is final only when its Status is settled (money sent, Fee
//     charged) or failed (definitively not sent, Reason says why). Pending
//     transfers become final later; Settle polls Status with a Backoff until
//     then or until its context ends (ErrPending).
//   - Reusing an ID for a different transfer is refused (422,
//     ErrIdempotencyMismatch); the first transfer with that ID stands.
//
// # Wire contract
//
// Every request carries "Authorization: Bearer <token>"; bodies are JSON.
//
//	POST {base}/transfers
//	Idempotency-Key: <transfer id>
//	Content-Type: application/json
//
//	{"id":"P-1","amount":50000,"to":{"bank":"KB","number":"123-456-789","holder":"김민수"},"memo":"bankbook"}
//
// answers 202 (accepted now), 200 (a repeat; "Idempotent-Replayed: true") or
// 201 with the transfer's Result:
//
//	{"id":"P-1","status":"pending","fee":0,"provider_ref":"FB00000001"}
//	{"id":"P-1","status":"settled","fee":500,"provider_ref":"FB00000001"}
//	{"id":"P-1","status":"failed","fee":0,"provider_ref":"FB00000001","reason":"account_closed"}
//
// The Idempotency-Key must equal the body's id.
//
//	GET {base}/transfers/{id}
//
// answers 200 with the Result, or 404 if the provider never accepted that ID.
//
// Errors carry {"error":"<code>","message":"..."}:
//
//	400 bad_request            malformed or invalid transfer          permanent; ErrRefused on Send
//	401 unauthorized           missing or wrong token                 permanent
//	404 unknown_transfer       GET of an unknown ID                   ErrUnknownTransfer
//	409 in_progress            the same ID is being processed         retried
//	422 idempotency_mismatch   ID reused with a different body        permanent
//	429 rate_limited           over the rate limit; Retry-After       retried
//	5xx                        provider or bank network trouble       retried
//
// Any other 4xx is permanent (*PermanentError). A 2xx whose body is not a
// Result for the requested ID is treated as a lost answer and retried.
//
// The provider's report of the transfers that became final in a period
// (Report; the nightly reconciliation reads it):
//
//	GET {base}/reports/transfers?from=<RFC 3339>&to=<RFC 3339>
//
// answers 200 text/csv, with a header row, one line per transfer final
// in [from, to):
//
//	payout_id,status,amount,fee,settled_at
//	P-1,settled,50000,500,2026-12-06T18:00:02Z
//
// # Webhooks
//
// A provider may also tell a transfer's final result when it has it,
// hours after the transfer was sent, by posting a WebhookEvent to a URL the
// operator gave it, signed with a secret they share (SignatureHeader,
// SignWebhook):
//
//	POST {webhook url}
//	Firmbank-Signature: t=1796626710,v1=<hex HMAC-SHA256 of "1796626710." + body>
//
//	{"event_id":"evt_FB00000001","type":"transfer.settled","created_at":"2026-12-07T06:58:21Z",
//	 "transfer":{"id":"P-1","status":"settled","fee":500,"provider_ref":"FB00000001"}}
//
// VerifyWebhook checks one; WebhookReceiver serves them and answers as
// its documentation says. Deliveries are at least once, in any order; the
// provider delivers again after no answer, a 5xx, 408, 425 or 429, and
// gives up on any other answer. A verified event is still only the provider's claim: the receiver's
// Notify should confirm it with Status before it records money movements.
//
// # The fake
//
// FakeService serves that contract and misbehaves on demand the way real
// providers do: it charges FakeOptions.Fee per settled transfer, requires
// the bearer token, rate-limits with 429 and Retry-After, fails transiently
// (FailRate, FailNext), processes a transfer and then withholds the answer
// (HangNext: the lost-response case), answers 409 while a slow transfer is
// in progress (Latency), and settles or fails transfers SettleAfter after
// accepting them on its own adjustable clock (Advance). Sent reports the
// money that really left, once per ID. With a WebhookURL, DeliverWebhooks
// (or RunWebhooks) posts each final transfer's signed event, again after a
// failure with a growing wait or the receiver's Retry-After, and
// WebhookRepeat times more after a success, as providers do.
package firmbanking

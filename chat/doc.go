// Package chat sends bankbook's notifications through a chat provider: the
// Provider interface the dispatcher depends on, an adapter for Sendbird's
// Platform API (or any service compatible with it), a webhook adapter, and
// Sim, a fake Sendbird that tests and `bankbook serve --chat-sim` use. It
// needs neither NATS nor bbolt: pacing sends (the shared limiter), retrying
// and recording outcomes are the dispatcher's job.
//
// # Guarantees
//
//   - Send makes one attempt: one HTTP request (the Sendbird adapter: up
//     to three for a recipient whose channel does not exist yet — send,
//     create the channel, send again), each bounded by the adapter's
//     Timeout and the caller's context. It never retries, so every request
//     goes through the caller's limiter.
//   - Every message carries its ID in its data as "notification_id"
//     (DataNotificationID), so a receiver can tell a repeat and Delivered can
//     find it. Providers do not dedupe (neither Sendbird's send API nor Sim):
//     exactly once on the recipient's side rests on the caller sending again
//     only when Delivered says the message is not there.
//   - A Send error says what became of the message (see the error values):
//     *RateLimitedError and *RejectedError mean nothing was stored;
//     ErrTimeout (always with ErrUnavailable) means the request went out and
//     no answer came, and ErrServerError (also with ErrUnavailable) that
//     the provider, or a gateway in front of it, answered 5xx: either way
//     the message may have arrived (MayHaveStored) — ask Delivered first;
//     other ErrUnavailable errors (408, a refused connection) are taken as
//     not stored. A 2xx is always a stored message, even when its body is
//     unreadable (the Receipt then has no Ref). A redirect is never
//     followed: it is a *RejectedError saying where it points (followed,
//     a 301 made the POST a GET without the message, and its 2xx a
//     message recorded sent that never arrived), but for a webhook
//     receiver's 303 See Other, which says it took the POST: a stored
//     message.
//   - A 429 becomes a *RateLimitedError whose RetryAfter is the provider's
//     wait (X-RateLimit-RetryAfter, else Retry-After, else Sendbird's
//     "retry_after: 0.165s" in the body, else 1s), capped at MaxRetryAfter.
//     The caller should pause every sender, not only itself.
//   - Delivered (Sendbird) reports a message in the recipient's channel
//     whose data.notification_id is the message's ID, created at or after
//     since on the provider's clock (pass since with a margin: the provider's
//     clock is not ours). It reads up to 1,000 messages; beyond that, or for a
//     webhook, ErrCannotCheck.
//
// # Sendbird: what was checked, and what was chosen
//
// From Sendbird's Chat Platform API v3 documentation (docs.sendbird.com):
//
//   - Send a message: POST https://api-{application_id}.sendbird.com/v3/group_channels/{channel_url}/messages,
//     header Api-Token, body {"message_type":"MESG","user_id":…,"message":…,
//     "custom_type":…,"data":…}; data is a string (here a JSON object).
//     The answer is the message object, with message_id and created_at (Unix
//     ms). The sender must exist as a user and be a member of the channel:
//     the adapter creates no users (SendbirdConfig.SenderID must exist) and
//     creates each channel with the sender as its member. How a recipient's
//     app joins its channel is outside bankbook.
//   - Create a group channel: POST /v3/group_channels {"channel_url",
//     "name","user_ids"}. channel_url: "only numbers, characters, and
//     underscores", 4 to 100 characters. bankbook's recipients
//     ("store:st_1") break that rule, so against the real service use
//     SafeChannelURL as SendbirdConfig.ChannelURL; the default keeps the
//     recipient as the channel_url, as API.md says and Sim accepts.
//   - Errors are {"error":true,"code":…,"message":…}. 400201 is
//     RESOURCE_NOT_FOUND in the Chat API (the Calls API uses the same
//     number for another error); 400202 is RESOURCE_ALREADY_EXISTS, which
//     the adapter treats as success when two senders create the same
//     channel at once.
//   - Rate limits: 429 with code 500910 and a message such as "Too many
//     requests (scope: app, limit: 10;w=1, remaining: 0, retry_after:
//     0.069786548614502s, reset: 0.96978664398193s)"; message sends and
//     channel creation are capped at 5 requests per second whatever the
//     plan. Sendbird recommends retrying after X-RateLimit-RetryAfter but
//     does not state its unit in what was found; the body gives seconds with
//     a fraction, and a third-party rate-limit profile says seconds. So a
//     number is read as seconds (a fraction allowed), and — because other
//     services send the same header as an absolute Unix time — a number of
//     at least 1e9 as Unix seconds and of at least 1e12 as Unix
//     milliseconds. Sim sends seconds with milliseconds ("0.165").
//   - List messages: GET …/messages with message_ts (Unix ms) or
//     message_id as the reference point, prev_limit and next_limit (0 to
//     200, default 15) and include (default true: messages exactly at
//     message_ts). Delivered asks message_ts=<since>&prev_limit=0&
//     next_limit=200&include=true, then continues from the last message_id
//     with include=false.
//   - Sendbird's send API was not found to take an idempotency key, hence
//     Delivered.
//
// # Costs worth knowing
//
// The first message to a recipient without a channel costs three requests
// against the provider's limits (two message sends and a channel creation),
// while the caller reserved one slot: with a tight budget the second send
// may be refused 429, which is harmless (nothing stored; the caller pauses
// and sends again). Each Delivered costs one GET per 200 messages scanned,
// which Sendbird limits separately (10 per second on the free plan). Sim
// counts only message sends.
//
// A *RejectedError for HTTP 401 (a wrong token) refuses every message
// alike; a dispatcher that dead-letters permanent refusals will
// dead-letter them all, to be redriven once the token is fixed.
package chat

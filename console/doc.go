// Package console is bankbook's ops web console: server-rendered HTML
// (html/template, templates and one stylesheet embedded, no script) served
// under Prefix (/console/) on the engine's operations listener, beside
// /healthz, /readyz and /metrics (docs/console.md).
//
// # What it guarantees
//
//   - It acts only through the NATS API, as the identity that logged in.
//     Each session opens its own NATS connection with the credentials given
//     at login (an NKey seed or an auth-file password) and makes every read
//     and every action with the typed client (package client). It never
//     opens the read models. What a session may do is what the NATS
//     server's permissions let that identity do: a refusal is shown as the
//     API error (403 forbidden), however the request reached the console.
//   - Only operator and auditor identities may log in. The role is the one
//     Config.Identities gives the name; an auditor's pages carry no action
//     forms, and an operator's do.
//   - Every action form carries an Idempotency-Key made when the form was
//     rendered, sent as the command's Idempotency-Key header: submitting
//     the same form twice (a double click, a reload) acts once, and the
//     second answer says it was replayed. The page shows the API's error
//     code and message on failure, and the commit's seq on success.
//   - Sessions: a random 32-byte cookie (HttpOnly, SameSite=Strict, Path
//     /console/, Secure over TLS or with Config.SecureCookies), ended after
//     Config.IdleTimeout without a request or Config.AbsoluteTimeout after
//     login, whichever comes first, whether or not the browser comes back;
//     logging out, expiring, logging in again and Close close the session's
//     NATS connection. At most Config.MaxSessions sessions are held, and
//     Config.MaxSessionsPerIdentity per identity. Every POST must carry the
//     session's CSRF token (403 otherwise), the login form its own;
//     cross-origin POSTs are refused as well (http.CrossOriginProtection),
//     and so is every request for a Host name that is not an IP address,
//     localhost or in Config.AllowedHosts (DNS rebinding).
//   - Logins: a wrong name and a wrong secret get the same answer after
//     the same delay (Config.FailureDelay); Config.MaxFailures attempts for
//     one name (known or not) or one client address within Config.LockoutWindow
//     lock further attempts out until the window passes, however many are
//     sent in parallel (an attempt counts from its start and is taken back
//     when it succeeds). No secret is logged or kept: a seed lives only in
//     the session's connection.
//   - Errors: the API's errors are shown as they are; a failure to reach
//     the engine is shown without the client's text (logged instead).
//   - Every page is sent with Content-Security-Policy (no script, styles
//     from the console only, no framing), X-Frame-Options DENY,
//     Referrer-Policy no-referrer and Cache-Control no-store.
//
// # Pages
//
// Overview (counts and the health of every part, from the same readiness
// source /readyz asks, in-process), orphan deposits (미아 입금) with their
// candidates and a confirmation stating the exact effect of each resolution,
// orders by id, depositor name (입금자명) and status, wallets, payouts,
// notifications with the limiter's state and redrive, dead letters with
// redrive, reconciliation runs and their items, and the ledger: trial
// balance, account drill-down, and a chart (inline SVG) of each suspense
// and clearing account's balance and oldest open item's age. List pages
// follow the API's cursors.
package console

package api

// Request and reply headers beyond micro's error headers
// (Nats-Service-Error-Code, Nats-Service-Error).
const (
	HeaderIdempotencyKey      = "Idempotency-Key"
	HeaderIdempotencyReplayed = "Idempotency-Replayed"
	HeaderCorrelationID       = "Correlation-Id"
	// HeaderRetryAfter is on an error reply that says when to retry
	// (details.retry_after_s): the same whole seconds, as HTTP's
	// Retry-After gives them.
	HeaderRetryAfter = "Retry-After"
)

// ServiceName is the micro service name clients and $SRV.* tooling use.
const ServiceName = "bankbook"

// Version is the engine's version, reported in $SRV.INFO.bankbook and by
// 'bankbook version'.
const Version = "0.2.0"

// Package subject holds what bankbook knows about NATS subject syntax, once:
// which strings may stand as one token of a subject (an aggregate type or
// ID, a worker part's name, a timer's kind or ID).
//
// Guarantee: a string Token accepts, put between dots, adds exactly one
// literal token to a subject: it can neither split into several tokens nor
// act as a wildcard, so a subject built from accepted tokens names only what
// its builder meant (a Load of aggregate ">" never reads another aggregate).
package subject

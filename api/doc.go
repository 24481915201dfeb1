// Package api is bankbook's external vocabulary: every endpoint of the NATS
// API once — its micro endpoint name, subject, kind, and request and reply
// types — and every wire type and header. The server routes, the Go client
// and the CLI all derive from the table in endpoints.go, so a subject is
// spelled in exactly one place.
//
// Requests validate themselves (Validate), with the field rules of package
// domain, so a client can refuse bad input before sending it and the server
// refuses it again (400) before anything is written.
//
// Consistency: every command reply carries Seq, the stream sequence of the
// commit the command wrote or found (0 when it writes nothing to the event
// stream); every query accepts MinSeq and is answered only once the read
// models of the instance that answers it have applied that sequence.
//
// api imports only package domain; the client and the CLI import api and
// nothing else of the engine.
package api

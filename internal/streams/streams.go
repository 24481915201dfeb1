// Package streams creates JetStream streams, and changes an existing one
// only when its configuration differs from the one asked for.
//
// Every engine instance opens the streams it uses at start. Sending the
// server an update for a stream whose settings are already right is not
// only useless: nats-server 2.15.2 rewrites the stream's file-store
// configuration on every update without the lock that consumer creation
// reads it under, so an instance starting while another creates its
// consumers races inside the server. Ensure asks first, and updates only
// a stream whose settings changed.
package streams

import (
	"context"
	"errors"
	"reflect"

	"github.com/nats-io/nats.go/jetstream"
)

// Ensure returns the stream named by want.Name: created with want if it
// does not exist, updated to want if one of the fields want sets differs,
// and left alone otherwise. Fields want leaves at their zero value are the
// server's to choose and never compared. Per-message TTLs, once allowed,
// stay allowed (the server refuses to turn them off).
func Ensure(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	stream, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return js.CreateOrUpdateStream(ctx, want)
	}
	if err != nil {
		return nil, err
	}
	have := stream.CachedInfo().Config
	if Covers(have, want) {
		return stream, nil
	}
	// The server never turns per-message TTLs off once allowed, and
	// refuses a whole update that asks to: what else differs is updated,
	// and the caller sees the TTLs in the stream's configuration.
	want.AllowMsgTTL = want.AllowMsgTTL || have.AllowMsgTTL
	return js.UpdateStream(ctx, want)
}

// Covers reports whether have already holds every field want sets (every
// field of want that is not its type's zero value).
func Covers(have, want jetstream.StreamConfig) bool {
	h, w := reflect.ValueOf(have), reflect.ValueOf(want)
	for i := range w.NumField() {
		f := w.Field(i)
		if f.IsZero() {
			continue
		}
		if !reflect.DeepEqual(h.Field(i).Interface(), f.Interface()) {
			return false
		}
	}
	return true
}

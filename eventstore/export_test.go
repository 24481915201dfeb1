package eventstore

import "context"

// Rewind is rewind, for the tests of package eventstore_test.
func (s *Store) Rewind(ctx context.Context, durable string, next Seq) error {
	return s.rewind(ctx, durable, next)
}

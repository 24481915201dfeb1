package projections

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/bankbook/bankbook/eventstore"
)

// Replay rebuilds the read models of opts (nil: the defaults) from sequence 1
// into a new file at path, up to the stream's last sequence when Replay
// starts, and returns the checkpoint reached and the file's Hash. Compare the
// hash with the live Store's Hash at the same checkpoint to check that the
// live read models are exactly what the events say; OpenReadOnly queries the
// result.
//
// path must not exist (ErrExists otherwise). The replay reads with direct
// gets only (eventstore.Reader: what the auditor identity may do), so it
// leaves nothing behind on the server. It applies
// exactly as the Runner does: a damaged commit (not a commit, or an event
// the codec cannot decode) is skipped and recorded (Store.Skipped of the
// result), so the replay has the live read models' content. If it fails,
// the partial file is removed.
func Replay(ctx context.Context, r *eventstore.Reader, path string, opts *Options) (checkpoint eventstore.Seq, hash string, err error) {
	if err := opts.Validate(); err != nil {
		return 0, "", err
	}
	// O_EXCL makes the existence check and the creation one step; bbolt
	// initialises the empty file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return 0, "", fmt.Errorf("%w: %s", ErrExists, path)
	}
	if err != nil {
		return 0, "", fmt.Errorf("replay: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, "", fmt.Errorf("replay: %w", err)
	}
	checkpoint, hash, err = replay(ctx, r, path, opts)
	if err != nil {
		_ = os.Remove(path)
		return 0, "", err
	}
	return checkpoint, hash, nil
}

func replay(ctx context.Context, r *eventstore.Reader, path string, opts *Options) (eventstore.Seq, string, error) {
	st, err := Open(path, opts)
	if err != nil {
		return 0, "", fmt.Errorf("replay: %w", err)
	}
	defer st.Close()
	until, err := r.Read(ctx, func(_ context.Context, batch []eventstore.Commit) error {
		return st.Apply(batch)
	})
	if err != nil {
		return 0, "", fmt.Errorf("replay: %w", err)
	}
	hash, cp, err := st.Hash()
	if err != nil {
		return 0, "", fmt.Errorf("replay: %w", err)
	}
	if cp != until {
		return 0, "", fmt.Errorf("replay: reached seq %d, want %d", cp, until)
	}
	if err := st.Close(); err != nil {
		return 0, "", fmt.Errorf("replay: %w", err)
	}
	return cp, hash, nil
}

package projections

import "errors"

// Blocked returns the commit the read models cannot get past: the commit
// whose refusal ended the last Run, for as long as the checkpoint has not
// reached it. The Runner keeps failing on it (each restart of Run meets it
// again) until the stream or the engine changes; nil, false otherwise.
func (r *Runner) Blocked() (*CommitError, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ce *CommitError
	if r.stopErr == nil || !errors.As(r.stopErr, &ce) || r.cp >= ce.Seq {
		return nil, false
	}
	return ce, true
}

package snapshots

import "errors"

// ErrChanged means the snapshot was replaced while it was being read (or a
// Put was torn by a concurrent one): its chunks do not add up to what its
// header says. Read it again, or do without it.
var ErrChanged = errors.New("snapshots: the snapshot changed while it was read")

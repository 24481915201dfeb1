package engine

// ReadModelsCaughtUpForQueries is what the engine's queries are told of
// the read models (nil: they may read them).
func ReadModelsCaughtUpForQueries(e *Engine) error { return e.readModelsCaughtUpForQueries() }

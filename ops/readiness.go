package ops

import (
	"context"
	"encoding/json"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// Part states as the supervisor reports them. /metrics shows a part as up
// (bankbook_part_up 1) exactly when its State is StateRunning; /readyz looks
// at Ready only, so a running projection that is still rebuilding is up but
// not ready.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateFailing  = "failing"
	StateStopped  = "stopped"
)

// PartStatus is what one background part (a projection, a reactor, the
// timers, the scanner), or one readiness condition such as "read models
// caught up", reports about itself.
type PartStatus struct {
	// Name identifies the part; it is the part label in /metrics, so it
	// comes from a fixed set, never from request data.
	Name string `json:"name"`
	// Ready is true when the part is doing its job and is caught up.
	Ready bool `json:"ready"`
	// State is one of the State constants (others are shown as they are).
	State string `json:"state"`
	// Reason says why the part is not ready ("rebuilding from seq 1, at
	// 4210 of 9000"). When empty for a part that is not ready, /readyz
	// fills in LastError or the state.
	Reason string `json:"reason,omitempty"`
	// Since is when the part entered State.
	Since time.Time `json:"since,omitzero"`
	// Restarts counts how often the supervisor restarted the part.
	Restarts uint64 `json:"restarts"`
	// LastError is the last error the part returned, if any.
	LastError string `json:"last_error,omitempty"`
}

// MarshalJSON writes p with Since as every bankbook time is written
// (domain.TimeLayout: UTC, always with microseconds), omitted when zero.
func (p PartStatus) MarshalJSON() ([]byte, error) {
	type plain PartStatus
	var since string
	if !p.Since.IsZero() {
		since = domain.FormatTime(p.Since)
	}
	return json.Marshal(struct {
		plain
		Since string `json:"since,omitempty"`
	}{plain(p), since})
}

// Readiness reports the status of every part. It is called on each /readyz
// request and, as Sources.Parts, on each scrape, so it must be cheap and
// must return by the time ctx ends. An error means the statuses are unknown:
// /readyz then answers 503 and the part series are left out of the scrape.
type Readiness interface {
	Ready(ctx context.Context) ([]PartStatus, error)
}

// ReadinessFunc adapts a function to Readiness.
type ReadinessFunc func(ctx context.Context) ([]PartStatus, error)

// Ready calls f.
func (f ReadinessFunc) Ready(ctx context.Context) ([]PartStatus, error) { return f(ctx) }

// Readinesses joins several readiness sources into one: the parts of all of
// them, in order. The first error is returned with the parts gathered so far.
func Readinesses(rs ...Readiness) Readiness {
	return ReadinessFunc(func(ctx context.Context) ([]PartStatus, error) {
		var all []PartStatus
		for _, r := range rs {
			ps, err := r.Ready(ctx)
			if err != nil {
				return all, err
			}
			all = append(all, ps...)
		}
		return all, nil
	})
}

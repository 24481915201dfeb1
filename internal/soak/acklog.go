package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Ack is one definitive answer a client got, as the ack log holds it: a
// success, or an error the engine will give again for the same key (4xx
// other than 409 conflict / in_progress and 429).
type Ack struct {
	// N numbers the acks in log order, from 1.
	N      int64  `json:"n"`
	Client int    `json:"client"`
	Op     string `json:"op"` // the endpoint's name (order_submit, …) or "sim_bank_transfer"
	// Key is the Idempotency-Key sent ("" for requests without one).
	Key     string          `json:"key,omitempty"`
	Request json.RawMessage `json:"request"`
	// Status is 200 for a success, otherwise the error's status and Code.
	Status int             `json:"status"`
	Code   string          `json:"code,omitempty"`
	Reply  json.RawMessage `json:"reply"`
	// Replayed says the engine answered from its idempotency record.
	Replayed bool `json:"replayed,omitempty"`
	// Repeat says the request repeated an earlier ack's (same key and
	// body) on purpose, to check the answer is the same.
	Repeat bool `json:"repeat,omitempty"`
	// Want is what the client knew the answer must say, where it knew: for
	// a payment to a store's dedicated account, the bill current when the
	// store paid (noBill for none), since one client bills each store, one
	// request at a time.
	Want     string    `json:"want,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// OK says the ack is a success.
func (a Ack) OK() bool { return a.Status == 200 }

// ackLog appends acks to a file, one JSON line each, fsynced before Append
// returns.
type ackLog struct {
	mu   sync.Mutex
	f    *os.File
	n    int64
	path string
}

func openAckLog(path string) (*ackLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ack log: %w", err)
	}
	return &ackLog{f: f, path: path}, nil
}

// Append writes a (numbering it) and syncs the file; only then may the
// caller count the ack.
func (l *ackLog) Append(a Ack) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a.N = l.n + 1
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("ack log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("ack log: %w", err)
	}
	l.n++
	return nil
}

// Count is how many acks have been appended.
func (l *ackLog) Count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Snapshot reads back what has been appended so far, no append half
// written.
func (l *ackLog) Snapshot() ([]Ack, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ReadAcks(l.path)
}

// Close closes the file; it is idempotent.
func (l *ackLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// ReadAcks reads an ack log back.
func ReadAcks(path string) ([]Ack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Ack
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	for line := 1; sc.Scan(); line++ {
		var a Ack
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

package soak

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/internal/engineproc"
)

// engineProc is one engine instance under test: one 'bankbook serve' child
// process at a time, always on the same data directory and addresses
// (engineproc.Proc, with the run's flags and its errors).
type engineProc struct {
	*engineproc.Proc
	// name is how the report names it: "engine", or "instance N" when
	// several run.
	name string
}

// engineArgs are every instance's flags.
func engineArgs() []string {
	return []string{"--cancel-window", cancelWindow.String(), "--durability", "safe", "--log-format", "json",
		// Notifications go to the fake chat provider in the first
		// instance's process, fast enough that they keep up with the
		// traffic.
		"--notify-rate", "500", "--notify-burst", "50"}
}

// newEngines makes n engine instances in dir (none started), all paying
// out through prov. The first embeds the NATS server that the clients and
// the other instances connect to, and runs the simulated bank and chat
// provider; the others join it as docs/operations.md "Several instances"
// says (--nats-url with the engine's key, the first's simulated chat
// provider), each with its own data directory and read models. The
// provider's webhooks go to the first.
func newEngines(bin, dir string, n int, extra []string, prov *provider) ([]*engineProc, error) {
	first := append(append(engineArgs(), prov.args()...), "--bank-sim", "--scan-interval", scanInterval.String(), "--chat-sim", "--chat-sim-rate", "1000")
	var sims []string // the first's simulator, for the others
	if n > 1 {
		chat, err := engineproc.FreePort()
		if err != nil {
			return nil, err
		}
		token := filepath.Join(dir, "sim.token")
		if err := os.WriteFile(token, []byte("sim\n"), 0o600); err != nil {
			return nil, err
		}
		first = append(first, "--chat-sim-listen", fmt.Sprintf("127.0.0.1:%d", chat))
		sims = append(prov.args(), "--chat-url", fmt.Sprintf("http://127.0.0.1:%d", chat), "--chat-token-file", token)
	}
	var out []*engineProc
	for i := range n {
		data, log, name, args := filepath.Join(dir, "data"), filepath.Join(dir, "engine.log"), "engine", first
		if n > 1 {
			name = fmt.Sprintf("instance %d", i+1)
		}
		if i > 0 {
			data, log = filepath.Join(dir, fmt.Sprintf("data-%d", i+1)), filepath.Join(dir, fmt.Sprintf("engine-%d.log", i+1))
			args = append(append(engineArgs(), "--nats-url", out[0].URL(), "--nats-nkey", out[0].Seed(auth.Engine)), sims...)
		}
		p, err := engineproc.New(engineproc.Config{Binary: bin, DataDir: data, LogPath: log, Label: "soak",
			Args: append(append([]string{}, args...), extra...)})
		if err != nil {
			return nil, err
		}
		out = append(out, &engineProc{Proc: p, name: name})
	}
	prov.hooks(out[0].HTTPAddr())
	return out, nil
}

// start starts the engine; its output goes to the log file, after a marker line.
func (p *engineProc) start() error {
	if err := p.Start(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrEngine, p.name, err)
	}
	return nil
}

// waitReady polls /readyz until it answers 200, the process exits, or
// timeout passes.
func (p *engineProc) waitReady(ctx context.Context, timeout time.Duration) error {
	if err := p.WaitReady(ctx, timeout); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrEngine, p.name, err)
	}
	return nil
}

// lag reads the instance's bankbook_projection_lag_events from /metrics:
// how many commits its read models are behind the stream.
func (p *engineProc) lag(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTPAddr()+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "bankbook_projection_lag_events "); ok {
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no bankbook_projection_lag_events in /metrics", p.name)
}

// caughtUp waits until every instance's read models hold the whole
// stream (queries go to any of them), at most timeout.
func caughtUp(ctx context.Context, engs []*engineProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, e := range engs {
		for {
			lag, err := e.lag(ctx)
			if err == nil && lag == "0" {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s: read models not caught up after %v: lag %s (%v)", e.name, timeout, lag, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

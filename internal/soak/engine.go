package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bankbook/bankbook/auth"
)

// engineProc is the engine under test: one 'bankbook serve' child process at
// a time, always on the same data directory and addresses.
type engineProc struct {
	bin        string
	dataDir    string
	listen     string // NATS client address
	httpListen string // /readyz
	extra      []string
	logPath    string

	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	waited error
	starts int
}

// newEngineProc picks two free loopback ports for the engine.
func newEngineProc(bin, dataDir, logPath string, extra []string) (*engineProc, error) {
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	return &engineProc{bin: bin, dataDir: dataDir, logPath: logPath, extra: extra,
		listen: fmt.Sprintf("127.0.0.1:%d", natsPort), httpListen: fmt.Sprintf("127.0.0.1:%d", httpPort)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL is the engine's NATS URL.
func (p *engineProc) URL() string { return "nats://" + p.listen }

func (p *engineProc) args() []string {
	return append([]string{"serve",
		"--data-dir", p.dataDir, "--listen", p.listen, "--http-listen", p.httpListen,
		"--bank-sim", "--scan-interval", scanInterval.String(), "--cancel-window", cancelWindow.String(),
		"--durability", "safe", "--log-format", "json",
	}, p.extra...)
}

// start starts the engine; its output goes to the log file, after a marker line.
func (p *engineProc) start() error {
	if p.running() {
		return errors.New("engine already running")
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("engine log: %w", err)
	}
	defer f.Close() // the child has its own descriptor
	p.starts++
	fmt.Fprintf(f, "=== soak: start %d at %s: %s %s\n", p.starts, time.Now().UTC().Format(time.RFC3339Nano), p.bin, strings.Join(p.args(), " "))
	cmd := exec.Command(p.bin, p.args()...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = engineEnv()
	// Its own process group (a terminal's ^C is the run's to handle), and
	// killed by the kernel if the run's process dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %v", ErrEngine, p.bin, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		p.waited = cmd.Wait()
		close(done)
	}()
	return nil
}

// engineEnv is the run's environment without BANKBOOK_* variables, which
// would change the engine's configuration behind the run's back.
// seed is the engine's generated seed file of role (created at its first
// start).
func (p *engineProc) seed(role auth.Role) string {
	return auth.SeedFile(filepath.Join(p.dataDir, "auth"), role)
}

func engineEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BANKBOOK_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *engineProc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exited is closed when the current engine process has exited.
func (p *engineProc) exited() <-chan struct{} { return p.done }

// waitReady polls /readyz until it answers 200, the process exits, or
// timeout passes.
func (p *engineProc) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.httpListen+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w: the engine exited (%v) before it was ready; its log ends:\n%s", ErrEngine, p.waited, p.logTail(3000))
		case <-ctx.Done():
			return fmt.Errorf("%w: not ready within %v (last /readyz: %s); its log ends:\n%s", ErrEngine, timeout, last, p.logTail(3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *engineProc) kill() error {
	if !p.running() {
		return nil
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill engine: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("kill engine: still running 30s after SIGKILL")
	}
}

// stop asks the engine to shut down (SIGTERM) and kills it if it has not
// within grace. It reports how the process ended.
func (p *engineProc) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waited
	case <-time.After(grace):
		_ = p.kill()
		return fmt.Errorf("engine still running %v after SIGTERM; killed", grace)
	}
}

// logCount counts the lines of the engine's output that contain s, and
// gives the number of the first.
func (p *engineProc) logCount(s string) (n, first int) {
	f, err := os.Open(p.logPath)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.Contains(sc.Text(), s) {
			if n == 0 {
				first = line
			}
			n++
		}
	}
	return n, first
}

// logTail returns about the last n bytes of the engine's output.
func (p *engineProc) logTail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

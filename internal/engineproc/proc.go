package engineproc

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

// Config says which process to run.
type Config struct {
	// Binary is the bankbook binary. Required.
	Binary string
	// DataDir is the engine's --data-dir. Required.
	DataDir string
	// LogPath is the file the process's output is appended to. Required.
	LogPath string
	// Command is the subcommand, before the standard flags. Default
	// {"serve"}. It must accept --data-dir, --listen and --http-listen and
	// answer 200 on /readyz when ready.
	Command []string
	// Args are appended after the standard flags (--data-dir, --listen,
	// --http-listen).
	Args []string
	// Label names the caller in the log's marker lines. Default "engineproc".
	Label string
}

// Validate reports every missing field.
func (c Config) Validate() error {
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("binary is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.LogPath == "" {
		errs = append(errs, errors.New("log path is required"))
	}
	return errors.Join(errs...)
}

// Proc is the engine process: one child at a time, always on the same data
// directory and addresses. Its methods are not safe for concurrent use,
// except the read-only ones (URL, HTTPAddr, Seed, Pid, CPU, RSS, Exited).
type Proc struct {
	cfg        Config
	listen     string // NATS client address
	httpListen string // /readyz

	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	waited error
	starts int
}

// New picks two free loopback ports for the process; it starts nothing.
func New(cfg Config) (*Proc, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("engineproc: %w", err)
	}
	if len(cfg.Command) == 0 {
		cfg.Command = []string{"serve"}
	}
	if cfg.Label == "" {
		cfg.Label = "engineproc"
	}
	natsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	return &Proc{cfg: cfg,
		listen: fmt.Sprintf("127.0.0.1:%d", natsPort), httpListen: fmt.Sprintf("127.0.0.1:%d", httpPort)}, nil
}

// FreePort returns a loopback TCP port nobody listened on a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL is the process's NATS URL.
func (p *Proc) URL() string { return "nats://" + p.listen }

// HTTPAddr is the HOST:PORT of its /readyz (and /debug/pprof with --pprof).
func (p *Proc) HTTPAddr() string { return p.httpListen }

// DataDir is its data directory.
func (p *Proc) DataDir() string { return p.cfg.DataDir }

// LogPath is the file its output goes to.
func (p *Proc) LogPath() string { return p.cfg.LogPath }

// Seed is the generated seed file of role (created at the first start of
// the engine on its data directory).
func (p *Proc) Seed(role auth.Role) string {
	return auth.SeedFile(filepath.Join(p.cfg.DataDir, "auth"), role)
}

// Starts is how many times the process was started.
func (p *Proc) Starts() int { return p.starts }

// Pid is the current child's process id, 0 before the first start.
func (p *Proc) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Args is the command line after the binary.
func (p *Proc) Args() []string {
	args := append([]string{}, p.cfg.Command...)
	args = append(args, "--data-dir", p.cfg.DataDir, "--listen", p.listen, "--http-listen", p.httpListen)
	return append(args, p.cfg.Args...)
}

// Start starts the process; its output goes to the log file, after a
// marker line. It does not wait for it to be ready (WaitReady does).
func (p *Proc) Start() error {
	if p.Running() {
		return errors.New("engineproc: already running")
	}
	if err := os.MkdirAll(filepath.Dir(p.cfg.LogPath), 0o700); err != nil {
		return fmt.Errorf("engineproc: log: %w", err)
	}
	f, err := os.OpenFile(p.cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("engineproc: log: %w", err)
	}
	defer f.Close() // the child has its own descriptor
	p.starts++
	fmt.Fprintf(f, "=== %s: start %d at %s: %s %s\n", p.cfg.Label, p.starts, time.Now().UTC().Format(time.RFC3339Nano), p.cfg.Binary, strings.Join(p.Args(), " "))
	cmd := exec.Command(p.cfg.Binary, p.Args()...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = Env()
	// Its own process group (a terminal's ^C is the caller's to handle),
	// and killed by the kernel if the caller's process dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %v", ErrNotReady, p.cfg.Binary, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		p.waited = cmd.Wait()
		close(done)
	}()
	return nil
}

// Env is this process's environment without BANKBOOK_* variables, for
// the children it runs.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BANKBOOK_") {
			env = append(env, kv)
		}
	}
	return env
}

// Running says whether the current child has not exited yet.
func (p *Proc) Running() bool {
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

// Exited is closed when the current child has exited (nil before the
// first start).
func (p *Proc) Exited() <-chan struct{} { return p.done }

// WaitReady polls /readyz until it answers 200, the process exits, or
// timeout passes.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration) error {
	if p.done == nil {
		return ErrNotRunning
	}
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
			return fmt.Errorf("%w: it exited (%v) before it was ready; its log ends:\n%s", ErrNotReady, p.waited, p.LogTail(3000))
		case <-ctx.Done():
			return fmt.Errorf("%w: not ready within %v (last /readyz: %s); its log ends:\n%s", ErrNotReady, timeout, last, p.LogTail(3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("engineproc: kill: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("engineproc: kill: still running 30s after SIGKILL")
	}
}

// Stop asks the process to shut down (SIGTERM) and kills it if it has not
// within grace. It reports how the process ended.
func (p *Proc) Stop(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waited
	case <-time.After(grace):
		_ = p.Kill()
		return fmt.Errorf("engineproc: still running %v after SIGTERM; killed", grace)
	}
}

// LogCount counts the lines of the process's output that contain s, and
// gives the number of the first.
func (p *Proc) LogCount(s string) (n, first int) {
	f, err := os.Open(p.cfg.LogPath)
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

// LogTail returns about the last n bytes of the process's output.
func (p *Proc) LogTail(n int64) string { return LogTail(p.cfg.LogPath, n) }

// LogTail returns about the last n bytes of the file at path.
func LogTail(path string, n int64) string {
	f, err := os.Open(path)
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

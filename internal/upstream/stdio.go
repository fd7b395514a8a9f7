package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// StdioOptions configures a StdioLink. Zero values are the defaults.
type StdioOptions struct {
	Name    string // upstream name, for logs and errors
	Command []string
	Env     map[string]string
	Dir     string
	Logger  *slog.Logger

	// MaxRestarts bounds restarts after crashes within RestartWindow
	// (default 5 within 1 minute); past it the link fails for good.
	MaxRestarts   int
	RestartWindow time.Duration
	// Backoff is the first restart delay (default 200ms), doubled per
	// consecutive crash up to MaxBackoff (default 5s).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// StopTimeout is how long Close waits after closing stdin and again
	// after SIGTERM before it kills the process group (default 2s each).
	StopTimeout time.Duration

	// OnExit is called when a process ends unexpectedly, before any
	// restart: the session fails the requests in flight.
	OnExit func(err error)
	// OnRestart is called after a restarted process is running: the
	// session replays the initialize handshake.
	OnRestart func()
}

// InheritedEnv lists the only variables a stdio upstream inherits from
// the gateway's environment: what a program needs to find its tools, its
// home and its locale. Everything else (the vault key, client secrets
// given as ${VAR}, cloud credentials) stays with the gateway; a server
// that needs a variable gets it by name in its config's env map, e.g.
// env: {GITHUB_TOKEN: "${GITHUB_TOKEN}"} (expanded from the gateway's
// environment when the config is read).
// SSL_CERT_FILE and SSL_CERT_DIR are paths, not secrets, and keep TLS
// trust the same as the gateway's.
var InheritedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// ChildEnv is the environment of a stdio upstream: the InheritedEnv
// variables lookup knows, then extra (which wins), in a stable order. It
// is never nil, so exec.Cmd never falls back to the whole environment.
func ChildEnv(lookup func(string) (string, bool), extra map[string]string) []string {
	env := make([]string, 0, len(InheritedEnv)+len(extra))
	for _, k := range InheritedEnv {
		if _, named := extra[k]; named {
			continue
		}
		if v, ok := lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// readLines reads the stdio transport (MCP basic/transports §stdio: one
// JSON-RPC message or batch per line) from r until it ends, strictly
// (mcpwire.ParseBody), and hands each message to handler; a line that is
// not JSON-RPC is logged (as what's) and skipped. The error is the
// reader's, nil at EOF.
func readLines(r io.Reader, handler Handler, log *slog.Logger, what string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), mcpwire.MaxEventSize)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		msgs, _, err := mcpwire.ParseBody(line)
		if err != nil {
			log.Warn(what+" wrote a line that is not JSON-RPC", "err", err)
			continue
		}
		for _, m := range msgs {
			handler(m, nil)
		}
	}
	return sc.Err()
}

// StdioLink runs an MCP server as a child process.
type StdioLink struct {
	opts    StdioOptions
	handler Handler
	log     *slog.Logger

	mu      sync.Mutex
	proc    *process // nil while restarting
	closed  bool
	crashes []time.Time

	done     chan struct{}
	doneOnce sync.Once
	wg       sync.WaitGroup
}

type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	wmu    sync.Mutex
	exited chan struct{}
	err    error
}

// StartStdio starts the process and returns its link.
func StartStdio(opts StdioOptions, h Handler) (*StdioLink, error) {
	if len(opts.Command) == 0 {
		return nil, errors.New("stdio upstream: empty command")
	}
	if opts.MaxRestarts == 0 {
		opts.MaxRestarts = 5
	}
	if opts.RestartWindow == 0 {
		opts.RestartWindow = time.Minute
	}
	if opts.Backoff == 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &StdioLink{opts: opts, handler: h, log: log.With("upstream", opts.Name), done: make(chan struct{})}
	p, err := l.spawn()
	if err != nil {
		return nil, err
	}
	l.proc = p
	l.wg.Add(1)
	go l.supervise(p)
	return l, nil
}

func (l *StdioLink) spawn() (*process, error) {
	cmd := exec.Command(l.opts.Command[0], l.opts.Command[1:]...)
	cmd.Dir = l.opts.Dir
	cmd.Env = ChildEnv(os.LookupEnv, l.opts.Env)
	// Own process group, so Close can signal the server and anything it
	// started; Pdeathsig so a killed gateway never leaves an orphan.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("stdio upstream %q: start %s: %w", l.opts.Name, l.opts.Command[0], err)
	}
	p := &process{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); l.readStdout(stdout) }()
	go func() { defer readers.Done(); l.readStderr(stderr, cmd.Process.Pid) }()
	go func() {
		readers.Wait() // Wait must follow the pipe readers (os/exec docs)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	l.log.Info("stdio upstream started", "pid", cmd.Process.Pid)
	return p, nil
}

func (l *StdioLink) readStdout(r io.Reader) {
	if err := readLines(r, l.handler, l.log, "stdio upstream"); err != nil {
		l.log.Warn("stdio upstream stdout", "err", err)
		_, _ = io.Copy(io.Discard, r)
	}
}

func (l *StdioLink) readStderr(r io.Reader, pid int) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4<<10), 64<<10)
	for sc.Scan() {
		l.log.Info("stdio upstream stderr", "pid", pid, "line", sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// supervise waits for each process to end and restarts it, with backoff,
// until the link is closed or the crash budget is spent.
func (l *StdioLink) supervise(p *process) {
	defer l.wg.Done()
	delay := l.opts.Backoff
	for {
		<-p.exited
		l.mu.Lock()
		closed := l.closed
		l.proc = nil
		now := time.Now()
		recent := l.crashes[:0]
		for _, t := range l.crashes {
			if now.Sub(t) < l.opts.RestartWindow {
				recent = append(recent, t)
			}
		}
		l.crashes = append(recent, now)
		budgetSpent := len(l.crashes) > l.opts.MaxRestarts
		l.mu.Unlock()
		if closed {
			return
		}
		l.log.Warn("stdio upstream exited", "err", exitErr(p.err), "restart", !budgetSpent)
		if l.opts.OnExit != nil {
			l.opts.OnExit(fmt.Errorf("upstream %q exited: %v", l.opts.Name, exitErr(p.err)))
		}
		if budgetSpent {
			l.log.Error("stdio upstream crashed too often; giving up", "crashes", len(l.crashes), "window", l.opts.RestartWindow)
			l.fail()
			return
		}
		select {
		case <-time.After(delay):
		case <-l.done:
			return
		}
		delay = min(delay*2, l.opts.MaxBackoff)
		next, err := l.spawn()
		l.mu.Lock()
		if err == nil && l.closed {
			l.mu.Unlock()
			l.stop(next)
			return
		}
		if err != nil {
			l.mu.Unlock()
			l.log.Error("stdio upstream restart failed", "err", err)
			l.fail()
			return
		}
		l.proc = next
		l.mu.Unlock()
		if l.opts.OnRestart != nil {
			l.opts.OnRestart()
		}
		p = next
	}
}

func exitErr(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (l *StdioLink) fail() { l.doneOnce.Do(func() { close(l.done) }) }

// Send writes one message as a line on the server's stdin.
func (l *StdioLink) Send(ctx context.Context, msg *mcpwire.Message) error {
	l.mu.Lock()
	p, closed := l.proc, l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if p == nil {
		select {
		case <-l.done:
			return fmt.Errorf("upstream %q: %w", l.opts.Name, ErrClosed)
		default:
			return fmt.Errorf("upstream %q is restarting", l.opts.Name)
		}
	}
	line := append(msg.Encode(), '\n')
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if _, err := p.stdin.Write(line); err != nil {
		return fmt.Errorf("upstream %q: write: %w", l.opts.Name, err)
	}
	return nil
}

// Done is closed when the link has failed for good.
func (l *StdioLink) Done() <-chan struct{} { return l.done }

// Pid returns the current process id, or 0 while none runs (for tests).
func (l *StdioLink) Pid() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proc == nil {
		return 0
	}
	return l.proc.cmd.Process.Pid
}

// Close stops the process: it closes stdin (the MCP stdio shutdown
// sequence), then sends SIGTERM, then SIGKILL to the whole process group.
func (l *StdioLink) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	p := l.proc
	l.mu.Unlock()
	l.fail()
	if p != nil {
		l.stop(p)
	}
	l.wg.Wait()
	return nil
}

func (l *StdioLink) stop(p *process) {
	_ = p.stdin.Close()
	pgid := p.cmd.Process.Pid
	select {
	case <-p.exited:
	case <-time.After(l.opts.StopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(l.opts.StopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.exited
		}
	}
	// Reap anything the server left in its group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

package connector

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/upstream"
)

// stopTimeout is how long a stdio process gets after its stdin closes,
// and again after SIGTERM, before its process group is killed.
const stopTimeout = 2 * time.Second

// serveStdio answers an open frame for a stdio upstream: only a command
// this connector's config lists, argument for argument, is ever run.
func (a *Agent) serveStdio(s net.Conn, f *Frame) {
	i := slices.IndexFunc(a.cfg.Upstreams, func(u AgentUpstream) bool { return slices.Equal(u.Command, f.Command) })
	if i < 0 {
		a.log.Warn("refused a stream to a command not in this connector's upstreams", "upstream", f.Upstream, "program", f.Command[0])
		_ = WriteFrame(s, &Frame{Kind: KindResult, Error: "command not served by this connector"})
		_ = s.Close()
		return
	}
	up := a.cfg.Upstreams[i]
	cmd := exec.Command(up.Command[0], up.Command[1:]...)
	cmd.Env = upstream.ChildEnv(os.LookupEnv, up.Env) // no secrets of the connector's own environment
	cmd.Dir = up.Cwd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop the whole group, never leave orphans
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	stderr, err3 := cmd.StderrPipe()
	if err := firstErr(err1, err2, err3, startErr(cmd, err1, err2, err3)); err != nil {
		a.log.Warn("stdio upstream did not start", "upstream", up.Name, "err", err)
		_ = WriteFrame(s, &Frame{Kind: KindResult, Error: "the process did not start"})
		_ = s.Close()
		return
	}
	log := a.log.With("upstream", up.Name, "pid", cmd.Process.Pid)
	log.Info("stdio upstream started")
	if err := WriteFrame(s, &Frame{Kind: KindResult, OK: true}); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = s.Close()
		return
	}
	_ = s.SetDeadline(time.Time{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 4<<10), 64<<10)
		for sc.Scan() {
			log.Info("stdio upstream stderr", "line", sc.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	ended := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(s, stdout) // until the process closes stdout (it exited)
		ended <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(stdin, s) // until the gateway ends the session
		_ = stdin.Close()
		ended <- struct{}{}
	}()
	<-ended // either side ended: the process gets stopTimeout to exit on its own
	stopGroup(cmd, stopTimeout)
	_ = s.Close()
	log.Info("stdio upstream stopped")
}

// stopGroup waits for the process to exit after its stdin closed, then
// sends SIGTERM, then SIGKILL, to its process group; always reaped.
func stopGroup(cmd *exec.Cmd, grace time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	pgid := -cmd.Process.Pid
	for _, sig := range []syscall.Signal{0, syscall.SIGTERM, syscall.SIGKILL} {
		if sig != 0 {
			_ = syscall.Kill(pgid, sig)
		}
		select {
		case <-done:
			return
		case <-time.After(grace):
		}
	}
	<-done
}

func startErr(cmd *exec.Cmd, errs ...error) error {
	if firstErr(errs...) != nil {
		return nil
	}
	return cmd.Start()
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

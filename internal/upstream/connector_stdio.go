package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// A stdio upstream behind a connector (issue 10): the connector runs the
// process on its side and pipes its stdin and stdout over one stream; on
// this side the stream carries the same newline-delimited JSON a StdioLink
// speaks with a local process. One stream per gateway session, as one
// process per session locally. There is no restart across a lost stream:
// the session's calls in flight fail (OnExit) and the link is done.

// StreamOptions configures a StreamLink.
type StreamOptions struct {
	Name string // upstream name, for logs and errors
	// Open opens the stream (connector.Hub.DialStdio for this upstream).
	Open   func(ctx context.Context) (net.Conn, error)
	Logger *slog.Logger
	// OnExit is called once when the stream ends other than by Close.
	OnExit func(err error)
	// WriteTimeout bounds one Send: a connector or process that stops
	// reading would otherwise block the session's sender until the
	// session ends. Zero: StreamWriteTimeout.
	WriteTimeout time.Duration
}

// StreamWriteTimeout is how long one message may take to be written into
// a connector stream before the link is failed.
const StreamWriteTimeout = 30 * time.Second

// StreamLink carries newline-delimited JSON-RPC over a stream.
type StreamLink struct {
	opts    StreamOptions
	handler Handler
	log     *slog.Logger
	conn    net.Conn

	wmu      sync.Mutex
	mu       sync.Mutex
	closed   bool
	failure  error // why Send failed the link, for OnExit
	done     chan struct{}
	doneOnce sync.Once
	wg       sync.WaitGroup
}

// OpenStream opens the stream and starts reading it.
func OpenStream(ctx context.Context, opts StreamOptions, h Handler) (*StreamLink, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := opts.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", opts.Name, err)
	}
	l := &StreamLink{opts: opts, handler: h, log: log.With("upstream", opts.Name), conn: conn, done: make(chan struct{})}
	l.wg.Add(1)
	go l.read()
	return l, nil
}

func (l *StreamLink) read() {
	defer l.wg.Done()
	err := readLines(l.conn, l.handler, l.log, "stdio upstream (through a connector)")
	l.mu.Lock()
	closed, failure := l.closed, l.failure
	l.mu.Unlock()
	if failure != nil {
		err = failure
	}
	_ = l.conn.Close()
	l.doneOnce.Do(func() { close(l.done) })
	if !closed && l.opts.OnExit != nil {
		if err == nil {
			err = fmt.Errorf("the connector's process ended")
		}
		l.opts.OnExit(err)
	}
}

// Send writes one message as a line.
func (l *StreamLink) Send(_ context.Context, msg *mcpwire.Message) error {
	select {
	case <-l.done:
		return ErrClosed
	default:
	}
	line := append(msg.Encode(), '\n')
	l.wmu.Lock()
	defer l.wmu.Unlock()
	timeout := l.opts.WriteTimeout
	if timeout <= 0 {
		timeout = StreamWriteTimeout
	}
	_ = l.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := l.conn.Write(line); err != nil {
		if isTimeout(err) {
			err = fmt.Errorf("upstream %q: the connector's process is not reading its input (nothing written within %s); the link is closed", l.opts.Name, timeout)
		} else {
			err = fmt.Errorf("upstream %q: %w", l.opts.Name, err)
		}
		l.fail(err)
		return err
	}
	return nil
}

// isTimeout reports a write deadline passing: os.ErrDeadlineExceeded from
// net.Conn implementations, yamux's own timeout error from a connector
// stream (both are net.Error with Timeout()).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// fail ends the link after a failed write: a partly written line leaves
// the stream unusable. The reader then reports err through OnExit.
func (l *StreamLink) fail(err error) {
	l.mu.Lock()
	if l.failure == nil {
		l.failure = err
	}
	l.mu.Unlock()
	_ = l.conn.Close()
}

// Close ends the stream; the connector then stops the process.
func (l *StreamLink) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	// Not waiting for the reader: it ends when the connector has stopped
	// the process and closed its side (bounded by the stream close timeout).
	_ = l.conn.Close()
	return nil
}

// Done is closed when the stream has ended.
func (l *StreamLink) Done() <-chan struct{} { return l.done }

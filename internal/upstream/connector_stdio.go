package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

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
}

// StreamLink carries newline-delimited JSON-RPC over a stream.
type StreamLink struct {
	opts    StreamOptions
	handler Handler
	log     *slog.Logger
	conn    net.Conn

	wmu      sync.Mutex
	mu       sync.Mutex
	closed   bool
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
	sc := bufio.NewScanner(l.conn)
	sc.Buffer(make([]byte, 64<<10), mcpwire.MaxEventSize)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		msgs, _, err := mcpwire.ParseBody(line)
		if err != nil {
			l.log.Warn("stdio upstream (through a connector) wrote a line that is not JSON-RPC", "err", err)
			continue
		}
		for _, m := range msgs {
			l.handler(m, nil)
		}
	}
	err := sc.Err()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
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
	if _, err := l.conn.Write(line); err != nil {
		return fmt.Errorf("upstream %q: %w", l.opts.Name, err)
	}
	return nil
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

package connector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"
)

// ErrNoInstance is returned by Dial when no live instance of the
// connector serves the address.
var ErrNoInstance = errors.New("no connected instance")

// Dial opens a byte pipe to address (host:port) through a live instance of
// connector name that announced it, naming upstream. New streams go to
// the instance carrying the fewest; an instance whose session fails is
// skipped and the next one tried.
func (h *Hub) Dial(ctx context.Context, name, upstream, address string) (net.Conn, error) {
	addr, err := ParseAddress(address)
	if err != nil {
		return nil, err
	}
	return h.dial(ctx, name, addr, func(u UpstreamInfo) bool { return u.Address == addr }, &Frame{Kind: KindOpen, Upstream: upstream, Address: addr})
}

// DialStdio opens a stream to a new process of the stdio upstream whose
// argv is command, run by a live instance of connector name that announced
// exactly that command. The stream carries the process's stdin and stdout.
func (h *Hub) DialStdio(ctx context.Context, name, upstream string, command []string) (net.Conn, error) {
	if err := checkCommand(command); err != nil {
		return nil, err
	}
	return h.dial(ctx, name, command[0], func(u UpstreamInfo) bool { return slices.Equal(u.Command, command) },
		&Frame{Kind: KindOpen, Upstream: upstream, Command: command})
}

// dial opens a stream on the least busy live instance whose hello matched,
// trying the next one when an instance fails; what names the target in
// errors.
func (h *Hub) dial(ctx context.Context, name, what string, match func(UpstreamInfo) bool, open *Frame) (net.Conn, error) {
	cands := h.candidates(name, match)
	if len(cands) == 0 {
		return nil, fmt.Errorf("connector %q: %w serves %s", name, ErrNoInstance, what)
	}
	var last error
	for _, in := range cands {
		c, err := h.open(ctx, in, open)
		if err == nil {
			return c, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connector %q: %w", name, last)
}

func (h *Hub) candidates(name string, match func(UpstreamInfo) bool) []*instance {
	h.mu.Lock()
	list := slices.Clone(h.instances[name])
	h.mu.Unlock()
	list = slices.DeleteFunc(list, func(in *instance) bool {
		return in.sess.IsClosed() || in.sess.NumStreams() >= MaxStreams || !slices.ContainsFunc(in.upstreams, match)
	})
	sort.SliceStable(list, func(i, j int) bool { return list[i].sess.NumStreams() < list[j].sess.NumStreams() })
	return list
}

// open opens one stream on in and sends the open frame.
func (h *Hub) open(ctx context.Context, in *instance, open *Frame) (net.Conn, error) {
	s, err := in.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", in.id, err)
	}
	deadline := h.now().Add(OpenTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if err := WriteFrame(s, open); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("instance %s: %w", in.id, err)
	}
	res, err := ReadFrame(s, KindResult)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("instance %s: %w", in.id, err)
	}
	if !res.OK {
		_ = s.Close()
		in.refused.Add(1)
		return nil, fmt.Errorf("instance %s refused upstream %s: %s", in.id, open.Upstream, res.Error)
	}
	_ = s.SetDeadline(time.Time{})
	in.opened.Add(1)
	return &tunnelConn{Conn: s, in: in, obs: h.obs}, nil
}

// tunnelConn is a stream the gateway opened: when the connector's session
// is lost mid-exchange, reads and writes fail with an error naming the
// connector and instance rather than a bare EOF, so the request's log
// line says which instance dropped (the client gets the upstream's
// "unavailable" JSON-RPC error from the gateway's one writer).
type tunnelConn struct {
	net.Conn
	in     *instance
	obs    Observer // nil: none
	closed sync.Once
}

// Close closes the stream; one closed after its instance's session ended
// was lost with it (in flight, or an idle upstream connection), and is
// reported so.
func (c *tunnelConn) Close() error {
	c.closed.Do(func() {
		if c.obs != nil && c.in.sess.IsClosed() {
			c.obs.StreamLost(c.in.name)
		}
	})
	return c.Conn.Close()
}

func (c *tunnelConn) lost(err error) error {
	if err != nil && c.in.sess.IsClosed() {
		return fmt.Errorf("connector %q instance %q: %w", c.in.name, c.in.id, ErrInstanceLost)
	}
	return err
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	return n, c.lost(err)
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	return n, c.lost(err)
}

// ErrInstanceLost: the connector instance carrying a stream disconnected.
var ErrInstanceLost = errors.New("connection to the connector lost")

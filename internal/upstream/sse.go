package upstream

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// SSEOptions configures an SSELink.
type SSEOptions struct {
	Name    string
	URL     string // the server's SSE endpoint, e.g. http://host/sse
	Headers map[string]string
	Client  *http.Client
	Logger  *slog.Logger
	// ConnectTimeout bounds the wait for the endpoint event (default 10s).
	ConnectTimeout time.Duration
}

// SSELink speaks the legacy HTTP+SSE transport (MCP 2024-11-05 §Transports):
// one long GET carries every server message; the first event, "endpoint",
// names the URL to POST client messages to.
type SSELink struct {
	opts     SSEOptions
	handler  Handler
	log      *slog.Logger
	endpoint string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	done     chan struct{}
	doneOnce sync.Once
	mu       sync.Mutex
	closed   bool
}

// DialSSE opens the event stream and waits for the endpoint event.
func DialSSE(ctx context.Context, opts SSEOptions, h Handler) (*SSELink, error) {
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(opts.URL)
	if err != nil {
		return nil, err
	}
	streamCtx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(streamCtx, http.MethodGet, opts.URL, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range opts.Headers {
		req.Header.Set(k, v)
	}
	connectTimer := time.AfterFunc(opts.ConnectTimeout, cancel)
	resp, err := opts.Client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("upstream %q: %w", opts.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		drain(resp)
		cancel()
		return nil, fmt.Errorf("upstream %q: GET %s answered HTTP %d", opts.Name, opts.URL, resp.StatusCode)
	}
	r := mcpwire.NewEventReader(resp.Body)
	ev, err := r.Next()
	if err != nil || ev.Name != "endpoint" {
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("upstream %q: %w", opts.Name, errNoEndpoint)
	}
	connectTimer.Stop()
	ep, err := base.Parse(string(bytes.TrimSpace(ev.Data)))
	if err != nil {
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("upstream %q: bad endpoint %q: %w", opts.Name, ev.Data, err)
	}
	// The endpoint must stay on the origin we were configured with: a
	// server must not redirect our messages elsewhere.
	if ep.Scheme != base.Scheme || ep.Host != base.Host {
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("upstream %q: endpoint %q is on another origin", opts.Name, ep.Redacted())
	}
	l := &SSELink{opts: opts, handler: h, log: log.With("upstream", opts.Name), endpoint: ep.String(), cancel: cancel, done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer resp.Body.Close()
		defer l.doneOnce.Do(func() { close(l.done) })
		for {
			ev, err := r.Next()
			if err != nil {
				if streamCtx.Err() == nil {
					l.log.Warn("legacy SSE upstream stream ended", "err", err)
				}
				return
			}
			if ev.Name != "" && ev.Name != "message" {
				continue
			}
			msgs, _, err := mcpwire.ParseBody(ev.Data)
			if err != nil {
				l.log.Warn("legacy SSE upstream sent an event that is not JSON-RPC", "err", err)
				continue
			}
			for _, m := range msgs {
				l.handler(m, nil)
			}
		}
	}()
	return l, nil
}

// Send POSTs one message to the endpoint; answers come on the stream.
func (l *SSELink) Send(ctx context.Context, msg *mcpwire.Message) error {
	select {
	case <-l.done:
		return fmt.Errorf("upstream %q: %w", l.opts.Name, ErrClosed)
	default:
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.endpoint, bytes.NewReader(msg.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range l.opts.Headers {
		req.Header.Set(k, v)
	}
	resp, err := l.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream %q: %w", l.opts.Name, err)
	}
	drain(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("upstream %q answered HTTP %d", l.opts.Name, resp.StatusCode)
	}
	return nil
}

// Done is closed when the event stream has ended.
func (l *SSELink) Done() <-chan struct{} { return l.done }

// Close ends the event stream.
func (l *SSELink) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	return nil
}

package app

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/forwarded"
)

// newHTTPServer is the listener's server, hardened against slow and
// oversized requests (audit finding 9): headers must arrive within
// read_header_timeout, idle keep-alive connections close after
// idle_timeout, and headers are bounded by max_header_bytes; each
// generation's handler bounds the body with bodyDeadline. There is no
// WriteTimeout: SSE streams (a GET stream, a long tool call) legitimately
// write for a long time.
func newHTTPServer(cfg *config.Config, h http.Handler, log *slog.Logger) *http.Server {
	l := cfg.Limits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(),
		IdleTimeout:       l.IdleTimeout.Std(),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// withForwarded resolves who each request comes from (trusted_proxies)
// before anything else looks at it. Without trusted_proxies, the first
// request carrying X-Forwarded-For says once in the log that the gateway
// probably runs behind a proxy it does not know.
func withForwarded(cfg *config.Config, h http.Handler, log *slog.Logger) (http.Handler, error) {
	p, err := forwarded.ParseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	h = forwarded.Middleware(p, h)
	if len(cfg.TrustedProxies) > 0 {
		return h, nil
	}
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-For") != "" {
			once.Do(func() {
				log.Warn("requests carry X-Forwarded-For but trusted_proxies is not set: sign-in throttling and logs see the proxy's address; list your reverse proxies in trusted_proxies",
					"peer", forwarded.ClientAddr(r))
			})
		}
		h.ServeHTTP(w, r)
	}), nil
}

// bodyDeadline bounds how long reading a request body may take, per
// request. http.Server.ReadTimeout would do it for the whole connection,
// but its deadline stays armed while the handler runs and cancels the
// request context of a long SSE response. Here the connection's read
// deadline is set when a body is expected and cleared as soon as the body
// has been read (or failed), so streams live on.
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(d)) != nil {
			next.ServeHTTP(w, r) // not a real connection (tests)
			return
		}
		body := &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		// A body the handler leaves unread keeps the deadline: the server
		// discards the rest after the handler, and a trickle must not hold
		// it there.
		r.Body = body
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once the body has been read to
// its end. After any other error (the deadline itself, a size limit) the
// deadline stays, so the rest of a trickled body cannot hold the server.
type deadlineBody struct {
	io.ReadCloser
	clear func()
	once  sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.done()
	}
	return n, err
}

func (b *deadlineBody) done() { b.once.Do(b.clear) }

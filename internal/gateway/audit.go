package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// audit logs one line per call that touches something (a tool, a
// resource, a prompt): who (user, tenant), through which agent (client),
// on which server, what, with which scopes, allowed or denied, how long.
// Every call is attributable without reading upstream logs.
func (g *Gateway) audit(server string, p *tokens.Claims, fr *frontRequest, outcome string, status int, took time.Duration) {
	for _, t := range fr.callTargets() {
		kind, name := t.kind, t.name
		if kind == "" {
			continue
		}
		attrs := []slog.Attr{
			slog.String("server", server), slog.String("kind", kind), slog.String("name", name),
			slog.String("outcome", outcome), slog.Int("status", status), slog.Duration("took", took),
			slog.String("addr", fr.client),
		}
		if p != nil {
			attrs = append(attrs, slog.String("user", p.Subject), slog.String("client", p.ClientID),
				slog.String("tenant", p.Tenant), slog.String("scope", p.Scope))
		} else {
			attrs = append(attrs, slog.String("user", "anonymous"))
		}
		g.log.LogAttrs(context.Background(), slog.LevelInfo, "audit", attrs...)
	}
	g.observe(server, fr, outcome, status, took)
}

// CallObserver sees what the audit line sees, once per audited POST, with
// no identity: the metrics hook. It must not block.
type CallObserver interface {
	ObserveCall(c *Call)
	// ObserveRefusal sees a request the front door refused before any
	// engine saw it (Host/Origin, token, method, content type, size,
	// JSON-RPC syntax, protocol version, scopes, session header), with
	// the HTTP status it was answered with.
	ObserveRefusal(server string, status int)
}

// Call is one audited POST for a CallObserver.
type Call struct {
	Server string
	// Targets has one entry per message of the POST: what it touches
	// (Kind "tool", "resource" or "prompt" and its name, as the client
	// wrote it), or Kind "" for a message that touches nothing
	// (initialize, a list, a notification, an answer).
	Targets []CallTarget
	// Outcome is the audit line's word: "allowed", or "denied: …" /
	// "refused: …" for a refusal; Status is the HTTP status answered.
	Outcome string
	Status  int
	Took    time.Duration
	// Failed: the gateway answered the POST with an error of its own
	// after it passed the checks (an upstream failure, a full server…),
	// whatever the status (an upstream failure is answered per request
	// under HTTP 200). Upstream says which upstream failure:
	// "unavailable" (JSON-RPC -32010), "timeout" (-32011), or "".
	Failed   bool
	Upstream string
}

// CallTarget is what one message touches.
type CallTarget struct{ Kind, Name string }

func (g *Gateway) observe(server string, fr *frontRequest, outcome string, status int, took time.Duration) {
	o := g.opts.Observe
	if o == nil {
		return
	}
	ts := fr.callTargets()
	c := &Call{Server: server, Targets: make([]CallTarget, len(ts)), Outcome: outcome, Status: status, Took: took}
	for i, t := range ts {
		c.Targets[i] = CallTarget{Kind: t.kind, Name: t.name}
	}
	if fr.failed != nil {
		c.Failed, c.Upstream = true, upstreamFailure(fr.failed)
	}
	o.ObserveCall(c)
}

// upstreamFailure names the upstream failure err answers with, by its
// JSON-RPC code (for the whole POST, or per request); "" for another
// error.
func upstreamFailure(err error) string {
	var e *rpcError
	if !errors.As(err, &e) {
		return ""
	}
	codes := []int{e.Code}
	for _, a := range e.Answers {
		if a != nil && a.Error != nil {
			codes = append(codes, a.Error.Code)
		}
	}
	for _, c := range codes {
		switch c {
		case mcpwire.CodeUpstreamUnavailable:
			return "unavailable"
		case mcpwire.CodeUpstreamTimeout:
			return "timeout"
		}
	}
	return ""
}

// statusRecorder remembers the status an engine answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observeRefusal tells the observer of a front-door refusal.
func (g *Gateway) observeRefusal(server string, err error) {
	o := g.opts.Observe
	if o == nil {
		return
	}
	status := http.StatusInternalServerError
	var e *rpcError
	if errors.As(err, &e) {
		status = e.Status
	}
	o.ObserveRefusal(server, status)
}

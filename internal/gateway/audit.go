package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

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

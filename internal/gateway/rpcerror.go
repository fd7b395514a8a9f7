package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/forwarded"
	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/oauth"
)

// rpcError is an MCP request the gateway refuses or cannot serve. The
// front door's checks and the engines return it; one writer
// (Gateway.writeError) renders it and logs its cause. What the client
// reads (status, headers, body) is kept apart from Cause, which is logged
// and never sent (DESIGN.md conventions 4 and 5).
//
// The body takes one of three forms:
//   - a JSON-RPC error answering the whole POST (Code, Message, ID, Data),
//     marked Cache-Control: no-store;
//   - Answers: JSON-RPC messages that answer the POST's requests one by
//     one, as an upstream's answers would (a batch when Batch is set or
//     there are several), with no cache directive of their own;
//   - OAuthError: an RFC 6750 §3 body ({"error", "error_description"}
//     from Message), for the 401 of a protected server.
type rpcError struct {
	Status  int             // HTTP status
	Code    int             // JSON-RPC error code
	Message string          // what the client reads
	ID      json.RawMessage // the request answered; nil: null
	Data    json.RawMessage // JSON-RPC error data, when the client needs more
	Header  http.Header     // set on the response: WWW-Authenticate, Retry-After, Allow

	Answers []*mcpwire.Message
	Batch   bool

	OAuthError string

	// Cause is why, for the log; nil: nothing worth logging (a client
	// that asked for something that does not exist, say).
	Cause error
}

func (e *rpcError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Cause)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *rpcError) Unwrap() error { return e.Cause }

// refuse builds the common case: a JSON-RPC error answering the POST.
func refuse(status, code int, msg string) *rpcError {
	return &rpcError{Status: status, Code: code, Message: msg}
}

// answering names the request e answers (JSON-RPC id) and returns e.
func (e *rpcError) answering(id json.RawMessage) *rpcError {
	e.ID = id
	return e
}

// because records why, for the log, and returns e.
func (e *rpcError) because(cause error) *rpcError {
	e.Cause = cause
	return e
}

// withHeader adds a response header and returns e.
func (e *rpcError) withHeader(key, value string) *rpcError {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(key, value)
	return e
}

// errSessionNotFound answers a request for a session the gateway does not
// know, or that belongs to someone else. MCP 2025-11-25 transports
// §"Session Management": 404 tells the client to start a new session.
func errSessionNotFound() *rpcError {
	return refuse(http.StatusNotFound, mcpwire.CodeInvalidRequest, "session not found; initialize a new session")
}

// errInternal answers a failure of the gateway itself; the client learns
// nothing of it.
func errInternal(cause error) *rpcError {
	return refuse(http.StatusInternalServerError, mcpwire.CodeInternalError, "gateway error").because(cause)
}

// asRPCError finds the rpcError in err; any other error is the gateway's
// own failure, answered as such (fail closed).
func asRPCError(err error) *rpcError {
	var e *rpcError
	if errors.As(err, &e) {
		return e
	}
	return errInternal(err)
}

// writeError is the one writer of the gateway's MCP endpoints: it logs
// err's cause once, with who sent the request, and renders err.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, server string, err error) {
	e := asRPCError(err)
	g.logCause(r, server, e)
	e.render(w)
}

// render writes e's status, headers and body.
func (e *rpcError) render(w http.ResponseWriter) {
	for k, vs := range e.Header {
		w.Header()[k] = vs
	}
	switch {
	case e.OAuthError != "":
		oauth.WriteJSON(w, e.Status, map[string]string{"error": e.OAuthError, "error_description": e.Message})
	case e.Answers != nil:
		writeJSONMessages(w, e.Status, e.Answers, e.Batch)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(e.Status)
		msg := mcpwire.ErrorResponse(e.ID, e.Code, e.Message)
		msg.Error.Data = e.Data
		_, _ = w.Write(msg.Encode())
	}
}

// logCause logs why a request was refused, once, with who sent it:
// repeated refusals are someone probing for a way past the checks.
func (g *Gateway) logCause(r *http.Request, server string, e *rpcError) {
	if e.Cause == nil {
		return
	}
	msg := "request failed" // the gateway or an upstream could not serve it
	if e.Status/100 == 4 {
		msg = "refused message"
	}
	attrs := []slog.Attr{slog.String("server", server), slog.Int("status", e.Status), slog.String("err", e.Cause.Error())}
	if p := Principal(r.Context()); p != nil {
		attrs = append(attrs, slog.String("user", p.Subject), slog.String("client", p.ClientID), slog.String("tenant", p.Tenant))
	}
	attrs = append(attrs, slog.String("addr", forwarded.ClientAddr(r)))
	g.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// answerEach answers every request of fr with answer(m): the form for
// failures the client should read per request (an upstream that is down,
// a service the user must connect first). Notifications and responses
// get no answer.
func answerEach(status int, fr *frontRequest, answer func(*mcpwire.Message) *mcpwire.Message) *rpcError {
	e := &rpcError{Status: status, Batch: fr.batch, Answers: []*mcpwire.Message{}}
	for _, m := range fr.msgs {
		if m.IsRequest() {
			e.Answers = append(e.Answers, answer(m))
		}
	}
	return e
}

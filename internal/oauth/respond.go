package oauth

import (
	"errors"
	"log/slog"
	"net/http"
)

// HandlerFunc is an OAuth endpoint written the way every endpoint of the
// authorization server is: it writes its success response itself and
// returns its error instead of writing it, so that one writer (Fail)
// decides what the client sees and one log line records why.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts fn to an http.Handler: an error fn returns goes to Fail.
// A nil *Error returned as error counts as no error (it is the usual
// mistake of returning a typed nil, and fn has answered by then).
func Handle(log *slog.Logger, fn HandlerFunc) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if e, ok := err.(*Error); err == nil || ok && e == nil {
			return
		}
		Fail(w, r, log, err)
	})
}

// Fail answers a request that went wrong and logs it once. The *Error err
// is or wraps (errors.As) is what the client is told, through WriteError;
// anything else is a server_error 500 that says nothing of it. The whole
// of err, the cause and whatever context wrapping added (the client, say),
// goes to the log only: at Error for a 5xx, at Debug for a 429 (an
// attacker's flood must not flood the log too), at Info otherwise.
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok || e == nil {
		e = &Error{Code: ServerError, Description: "internal error", Status: http.StatusInternalServerError, Cause: err}
	}
	WriteError(w, e)
	status := e.status()
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case status == http.StatusTooManyRequests:
		level = slog.LevelDebug
	}
	log.Log(r.Context(), level, "OAuth request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
}

package web

import (
	"errors"
	"log/slog"
	"net/http"
)

// PageError is a request that ends on the error page: what the person is
// shown (Status, Title, Message) kept apart from why (Cause, for the log
// only). Page handlers return one instead of rendering it, so that one
// writer (Fail) renders every error page with the same headers and logs
// it once.
type PageError struct {
	Status  int // HTTP status; 0 (or any that is not 4xx/5xx) means 500
	Title   string
	Message string
	Cause   error
}

func (e *PageError) Error() string {
	if e.Cause != nil {
		return e.Title + ": " + e.Message + ": " + e.Cause.Error()
	}
	return e.Title + ": " + e.Message
}

func (e *PageError) Unwrap() error { return e.Cause }

// SomethingWrong is the page for a failure the person can do nothing
// about but try again (a store or sealing error: cause).
func SomethingWrong(cause error) *PageError {
	return &PageError{Status: http.StatusInternalServerError, Title: "Error", Message: "Something went wrong; try again.", Cause: cause}
}

// PageFunc is a page handler: it writes its page (or redirect) itself and
// returns its error instead of rendering it.
type PageFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts fn to an http.Handler whose errors Fail renders. A nil
// *PageError returned as error counts as no error.
func Handle(log *slog.Logger, fn PageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); !IsNil(err) {
			Fail(w, r, log, err)
		}
	})
}

// IsNil reports whether err is nil or a nil *PageError (a typed nil).
func IsNil(err error) bool {
	e, ok := err.(*PageError)
	return err == nil || ok && e == nil
}

// Fail renders err as the error page, with the security headers of every
// page, and logs it once. The *PageError err is or wraps is what the
// person sees; any other error shows the page of SomethingWrong, nothing
// of err itself. The log gets all of err (its cause, and the context that
// wrapping added): at Error for a 5xx; at Warn for a refusal with a cause
// (a verification that failed, a state from another browser: worth an
// operator's eye); at Info for the rest (a stale form, a bad link).
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e, ok := errors.AsType[*PageError](err)
	if !ok || e == nil {
		e = SomethingWrong(err)
	}
	status := e.Status
	if status < 400 || status > 599 { // unset, or no error status: a mistake must not answer 2xx
		status = http.StatusInternalServerError
	}
	Render(w, status, "error.html", ErrorPage{Title: e.Title, Message: e.Message})
	if log == nil {
		return
	}
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case e.Cause != nil:
		level = slog.LevelWarn
	}
	log.Log(r.Context(), level, "error page", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
}

package gateway

import (
	"fmt"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/upstream"
)

// An upstream of a bridge session that refuses the caller until the user
// does something (an mcp-oauth upstream the user has not connected yet:
// its Refused or Credential hook says so with a ToolError) is not failed
// for the session's lifetime, as a broken one is. It stays "refused":
//   - a request routed to it is answered with what the user must do, as
//     passthrough answers (a tool error for tools/call naming the connect
//     URL, a JSON-RPC error otherwise), never "upstream unavailable";
//   - every request routed to it, and every list, first tries its
//     handshake again, so once the user connected, the next request gets
//     the upstream without the client having to start over; the client
//     is then told its lists changed (the standalone stream of a session,
//     the listen streams of a 2026-07-28 caller).

// refusedErr is why u refuses the caller now, nil when it does not.
func (u *upConn) refusedErr() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.refusal
}

// markRefused records err as u's refusal when it is one the user can
// act on (it carries a ToolError), and reports whether it was.
func (u *upConn) markRefused(err error) bool {
	if _, ok := toolErrorText(err); !ok {
		return false
	}
	u.mu.Lock()
	u.refusal = err
	u.mu.Unlock()
	return true
}

// initUpstream runs an upstream's handshake: server/discover for a
// 2026-07-28 caller's native upstream, else initialize.
func (s *session) initUpstream(u *upConn) (*mcpwire.Message, error) {
	if res := s.discoverNative(u); res != nil {
		return res, nil
	}
	return s.handshake(u)
}

// retryRefused runs the handshake of a refused upstream again (one at a
// time). nil: the upstream took it and serves the session from now on;
// else the refusal (or failure) to answer with.
func (s *session) retryRefused(u *upConn) error {
	u.retry.Lock()
	defer u.retry.Unlock()
	if u.refusedErr() == nil {
		return nil // another request got it through meanwhile
	}
	res, err := s.initUpstream(u)
	switch {
	case err != nil && u.markRefused(err):
		return err
	case err != nil:
		s.b.g.log.Warn("upstream initialize failed", "server", s.b.name, "upstream", u.spec.Name, "err", err)
		return fmt.Errorf("upstream %q is unavailable", u.spec.Name)
	case res.Error != nil:
		return fmt.Errorf("upstream %q refused initialize: %s", u.spec.Name, res.Error.Message)
	}
	if !u.isNative() && !u.isEra26() {
		_ = u.link.Send(s.ctx, mcpwire.Notification("notifications/initialized", nil))
		if hl, ok := u.link.(*upstream.HTTPLink); ok && !s.stateless {
			hl.Listen()
		}
	}
	u.mu.Lock()
	u.refusal = nil
	u.mu.Unlock()
	u.markReady()
	s.b.g.log.Info("upstream now serves the session", "server", s.b.name, "upstream", u.spec.Name)
	s.announceLists(u)
	return nil
}

// announceLists tells the client that the lists u contributes to changed
// (it now has tools, prompts, resources it did not have).
func (s *session) announceLists(u *upConn) {
	for _, k := range []struct{ capability, method string }{
		{"tools", "notifications/tools/list_changed"},
		{"prompts", "notifications/prompts/list_changed"},
		{"resources", "notifications/resources/list_changed"},
	} {
		u.mu.Lock()
		_, has := u.caps[k.capability]
		u.mu.Unlock()
		if !has {
			continue
		}
		m := mcpwire.Notification(k.method, nil)
		if s.stateless {
			s.b.publish(s, m)
		} else {
			s.standalone.push(m.Encode(), false)
		}
	}
}

// retryAllRefused retries, at once, every refused upstream of s (before
// a list, so the list has their items once the user connected).
func (s *session) retryAllRefused() {
	done := make(chan struct{})
	n := 0
	for _, u := range s.ups {
		if u.err == nil && u.refusedErr() != nil {
			n++
			go func() { _ = s.retryRefused(u); done <- struct{}{} }()
		}
	}
	for ; n > 0; n-- {
		<-done
	}
}

// refusedAnswer is the answer to m when err is an upstream's refusal the
// user can act on: a tool error for tools/call, a JSON-RPC error saying
// what to do otherwise; nil for any other error.
func refusedAnswer(m *mcpwire.Message, err error) *mcpwire.Message {
	msg, ok := toolErrorText(err)
	if !ok {
		return nil
	}
	return toolErrorMessage(m, msg)
}

// refusedCaps marks, in merged initialize capabilities, that the tool
// list may change: a refused upstream's tools arrive once the user
// connected it, and the client is told so.
func refusedCaps(caps map[string]map[string]any) {
	if caps["tools"] == nil {
		caps["tools"] = map[string]any{}
	}
	caps["tools"]["listChanged"] = true
}

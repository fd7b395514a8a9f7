package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// subscriptions/listen through the passthrough (MCP 2026-07-28,
// SEP-2575: "Sent from the client to open a long-lived channel for
// receiving notifications outside the context of a specific request.
// Replaces the previous HTTP GET endpoint").
//
// The request is a POST whose answer is an event stream that stays open:
// first notifications/subscriptions/acknowledged, then the notifications
// the client opted in to, each tagged with
// _meta["io.modelcontextprotocol/subscriptionId"], and a
// SubscriptionsListenResult only when the server ends the subscription
// gracefully. The passthrough carries it as it carries a GET stream:
//   - the upstream timeout applies until the acknowledgement (an upstream
//     that never acknowledges is answered -32011 like any request), and
//     not after: an idle subscription is not a slow answer;
//   - the stream ends when the client leaves or the gateway drains; on a
//     drain the gateway ends the subscription gracefully itself (the
//     result, naming the subscription) so the client listens anew,
//     reaching another replica;
//   - on a server with per-resource scopes, the resources the client
//     subscribes to (notifications.resourceSubscriptions) are checked like
//     resources/subscribe (403 naming the scope, before the upstream sees
//     anything), and notifications/resources/updated for a resource the
//     token may not read never reach the client (an upstream may report a
//     sub-resource of the one subscribed).

const (
	methodListen       = "subscriptions/listen"
	methodAcknowledged = "notifications/subscriptions/acknowledged"
	methodUpdated      = "notifications/resources/updated"
	metaSubscriptionID = "io.modelcontextprotocol/subscriptionId"
)

// isListen reports whether fr is one subscriptions/listen request.
func isListen(fr *frontRequest) bool {
	return !fr.batch && len(fr.msgs) == 1 && fr.msgs[0].IsRequest() && fr.msgs[0].Method == methodListen
}

// checkListen applies the resource scopes to the resources each
// subscriptions/listen of fr subscribes to. It reads
// params.notifications.resourceSubscriptions as strictly as Parse reads
// params: a list the filter might read differently from the upstream
// (a member twice, a case variant, an item that is not a string) is
// refused.
func (f *scopeFilter) checkListen(fr *frontRequest, auth *AuthSpec) *rpcError {
	for _, m := range fr.msgs {
		if m.Method != methodListen {
			continue
		}
		uris, err := resourceSubscriptions(m.Params)
		if err != nil {
			return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, "invalid params: "+err.Error()).answering(m.ID).because(err)
		}
		for _, uri := range uris {
			if need := f.missing("resource", uri); need != "" {
				return insufficientScope(m.ID, auth, "resource", uri, need)
			}
		}
	}
	return nil
}

// auditOutcome is the audit line's word for a refusal of checkListen.
func (e *rpcError) auditOutcome() string {
	if e.Status == http.StatusForbidden {
		return "denied: insufficient scope"
	}
	return "refused: invalid params"
}

// resourceSubscriptions reads params.notifications.resourceSubscriptions
// of a subscriptions/listen request (a SubscriptionFilter, MCP 2026-07-28
// schema).
func resourceSubscriptions(params json.RawMessage) ([]string, error) {
	if params == nil || string(params) == "null" {
		return nil, nil
	}
	v, err := mcpwire.Members(params, "notifications")
	if err != nil || v[0] == nil || string(v[0]) == "null" {
		return nil, err
	}
	v, err = mcpwire.Members(v[0], "resourceSubscriptions")
	if err != nil {
		return nil, fmt.Errorf("params.notifications: %w", err)
	}
	if v[0] == nil || string(v[0]) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v[0], &items); err != nil {
		return nil, fmt.Errorf("params.notifications.resourceSubscriptions must be an array of strings")
	}
	uris := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := mcpwire.String(it)
		if !ok {
			return nil, fmt.Errorf("params.notifications.resourceSubscriptions must be an array of strings")
		}
		uris = append(uris, s)
	}
	return uris, nil
}

// listenRelay is the state of one subscriptions/listen stream being
// relayed (see relaySSE).
type listenRelay struct {
	id     json.RawMessage
	filter *scopeFilter // nil: nothing to filter
	acked  bool         // the upstream acknowledged the subscription
}

// listenStream returns the relay state of fr's stream when fr is a
// subscriptions/listen, else nil.
func listenStream(fr *frontRequest) *listenRelay {
	if !isListen(fr) {
		return nil
	}
	return &listenRelay{id: fr.msgs[0].ID, filter: fr.filter}
}

// event judges one event of the stream: ok false drops it. It notes the
// acknowledgement, after which the upstream timeout no longer applies.
func (l *listenRelay) event(data []byte) ([]byte, bool) {
	m := peekEnvelope(data)
	if m != nil && m.Method == methodAcknowledged {
		l.acked = true
	}
	if l.filter == nil {
		return data, true
	}
	switch {
	case m == nil:
		// Not one strict message: the filter cannot tell what the
		// client would read.
		return nil, false
	case m.Method == methodUpdated:
		return data, m.URI != "" && l.filter.allows("resource", m.URI)
	case m.IsResponse():
		return l.filter.filterMessage(nil, data)
	}
	return data, true
}

// ended is what ends the stream when the gateway drains: the
// SubscriptionsListenResult of a graceful end, naming the subscription.
func (l *listenRelay) ended() []byte {
	res, _ := json.Marshal(map[string]any{"resultType": "complete", "_meta": map[string]json.RawMessage{metaSubscriptionID: l.id}})
	return mcpwire.Response(l.id, res).Encode()
}

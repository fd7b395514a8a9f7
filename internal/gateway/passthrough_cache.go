package gateway

import (
	"bytes"
	"encoding/json"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Cache hints on lists the gateway filters per user.
//
// MCP 2026-07-28 server/utilities/caching (SEP-2549): list results carry
// ttlMs and cacheScope; "public" means the response "does not contain
// user-specific data. Any client or intermediary (e.g., shared gateway,
// caching proxy) MAY cache the response and serve it across authorization
// contexts", "private" that caches "MUST NOT be shared across
// authorization contexts". A list the scope filter trimmed to one token's
// scopes is user-specific whatever the upstream said (it cannot know what
// the gateway removes), so the gateway marks it private. Earlier
// revisions have no cache hints: a 2025-11-25 answer is marked only when
// the upstream put a hint in it anyway (some SDKs do, whatever the
// revision), so that no answer says "public" about a per-user list.

// filterAnswer is the scope filter of the answers to fr's list requests
// (filterMessage), with the cache hint of a 2026-07-28 answer set to
// private.
func (p *passthrough) filterAnswer(fr *frontRequest, data []byte) ([]byte, bool) {
	data, ok := fr.filter.filterMessage(fr.lists, data)
	if !ok || len(fr.lists) == 0 {
		return data, ok
	}
	return privateLists(fr.lists, data, fr.stateless)
}

var privateScope = json.RawMessage(`"private"`)

// privateLists sets cacheScope "private" on the results in data (one
// message or a batch) that answer lists (by request id key): on all of
// them when always, else on those that carry a cacheScope. ok false: a
// result is ambiguous (a member twice, a case variant) and must not pass.
func privateLists(lists map[string]string, data []byte, always bool) ([]byte, bool) {
	return rewriteResults(data, func(m *mcpwire.Message) (json.RawMessage, bool) {
		if _, ok := lists[mcpwire.IDKey(m.ID)]; !ok {
			return nil, true
		}
		return markPrivate(m.Result, always)
	})
}

// markPrivate returns result with cacheScope "private", or nil when it
// says so already (or says nothing, unless always).
func markPrivate(result json.RawMessage, always bool) (json.RawMessage, bool) {
	vals, err := mcpwire.Members(result, "cacheScope")
	if err != nil {
		return nil, false
	}
	if bytes.Equal(vals[0], privateScope) || (vals[0] == nil && !always) {
		return nil, true
	}
	var r map[string]json.RawMessage // Members refused duplicates: the map holds every member
	if json.Unmarshal(result, &r) != nil {
		return nil, false
	}
	r["cacheScope"] = privateScope
	out, err := json.Marshal(r)
	if err != nil {
		return nil, false
	}
	return out, true
}

package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Aggregation gives every upstream of a server a prefix so names never
// collide: tools and prompts appear as "<prefix>__<name>", resources as
// "<prefix>+<uri>".
const (
	nameSep = "__"
	uriSep  = "+"
	// maxNameLen is what clients accept for tool names (Claude: 64
	// characters of [a-zA-Z0-9_-]); longer prefixed names get a stable
	// short form (DESIGN.md, "Prefixed tool names").
	maxNameLen = 64
)

// exposedName returns the client-facing name of upstream tool or prompt name.
func exposedName(prefix, name string) string {
	full := prefix + nameSep + name
	if len(full) <= maxNameLen {
		return full
	}
	sum := sha256.Sum256([]byte(name))
	tag := "_" + hex.EncodeToString(sum[:4])
	keep := maxNameLen - len(prefix) - len(nameSep) - len(tag)
	return prefix + nameSep + name[:max(keep, 0)] + tag
}

// splitName finds the upstream and original name behind an exposed name.
func (s *session) splitName(exposed string) (int, string, bool) {
	s.mu.Lock()
	ref, ok := s.names[exposed]
	s.mu.Unlock()
	if ok {
		return ref.up, ref.name, true
	}
	return s.splitPrefixed(exposed, nameSep)
}

func (s *session) splitURI(exposed string) (int, string, bool) {
	return s.splitPrefixed(exposed, uriSep)
}

// splitPrefixed strips the longest "<prefix><sep>" of an upstream.
func (s *session) splitPrefixed(exposed, sep string) (int, string, bool) {
	best, bestLen := -1, 0
	for i, u := range s.ups {
		if strings.HasPrefix(exposed, u.spec.Prefix+sep) && len(u.spec.Prefix) > bestLen {
			best, bestLen = i, len(u.spec.Prefix)
		}
	}
	if best < 0 {
		return 0, "", false
	}
	return best, exposed[bestLen+len(sep):], true
}

// initResult builds the answer to the client's initialize: the upstream's
// own for a single upstream; for aggregation, the union of capabilities of
// the upstreams that answered.
func (s *session) initResult(results []*mcpwire.Message) (json.RawMessage, string) {
	if !s.b.aggregated {
		u := s.ups[0]
		switch r := results[0]; {
		case r == nil && u.refusedErr() != nil:
			msg, _ := toolErrorText(u.refusedErr())
			return nil, msg
		case r == nil:
			// The cause (a dial error naming the upstream's internal
			// address, say) was logged by connectAll; the client learns
			// only which upstream failed.
			return nil, fmt.Sprintf("upstream %q is unavailable", u.spec.Name)
		case r.Error != nil:
			return nil, fmt.Sprintf("upstream %q refused initialize: %s", u.spec.Name, r.Error.Message)
		}
		return results[0].Result, ""
	}
	caps := map[string]map[string]any{}
	var versions, failed, instructions, refused []string
	for i, r := range results {
		u := s.ups[i]
		if err := u.refusedErr(); r == nil && err != nil {
			msg, _ := toolErrorText(err)
			refused = append(refused, msg)
			instructions = append(instructions, fmt.Sprintf("Tools prefixed %q appear once the user acts: %s", u.spec.Prefix+nameSep, msg))
			continue
		}
		if r == nil || r.Error != nil {
			if u.err == nil {
				u.err = fmt.Errorf("upstream %q refused initialize", u.spec.Name)
			}
			failed = append(failed, u.spec.Name)
			continue
		}
		var ir struct {
			ProtocolVersion string                    `json:"protocolVersion"`
			Capabilities    map[string]map[string]any `json:"capabilities"`
			Instructions    string                    `json:"instructions"`
		}
		if json.Unmarshal(r.Result, &ir) != nil {
			failed = append(failed, u.spec.Name)
			continue
		}
		versions = append(versions, ir.ProtocolVersion)
		for k, v := range ir.Capabilities {
			if caps[k] == nil {
				caps[k] = map[string]any{}
			}
			for kk, vv := range v {
				if b, ok := vv.(bool); ok && b || caps[k][kk] == nil {
					caps[k][kk] = vv
				}
			}
		}
		if ir.Instructions != "" {
			instructions = append(instructions, fmt.Sprintf("Tools and prompts prefixed %q: %s", u.spec.Prefix+nameSep, ir.Instructions))
		}
	}
	if len(versions) == 0 && len(refused) > 0 {
		return nil, strings.Join(refused, "; ")
	}
	if len(versions) == 0 {
		return nil, fmt.Sprintf("no upstream of %q is available (%s)", s.b.name, strings.Join(failed, ", "))
	}
	if len(refused) > 0 {
		refusedCaps(caps)
	}
	// The oldest revision any upstream chose is the one all can speak.
	slices.Sort(versions)
	res := map[string]any{
		"protocolVersion": versions[0],
		"capabilities":    caps,
		"serverInfo":      map[string]string{"name": "mcpgate/" + s.b.name, "version": "1"},
	}
	if len(instructions) > 0 {
		res["instructions"] = strings.Join(instructions, "\n\n")
	}
	out, _ := json.Marshal(res)
	return out, ""
}

// listKinds maps each list method to the result field holding its items
// and the item field that carries the name or URI to prefix.
var listKinds = map[string]struct{ items, key, capability string }{
	"tools/list":               {"tools", "name", "tools"},
	"prompts/list":             {"prompts", "name", "prompts"},
	"resources/list":           {"resources", "uri", "resources"},
	"resources/templates/list": {"resourceTemplates", "uriTemplate", "resources"},
}

// aggregatedRequest routes one client request of an aggregating server.
// It routes on the names the strict parse read (m.Name, m.URI, m.Ref), the
// ones the scope check and the audit line read, and forwards params with
// exactly that member replaced by the upstream's own name.
func (s *session) aggregatedRequest(st *stream, m *mcpwire.Message, filter *scopeFilter) {
	if kind, ok := listKinds[m.Method]; ok {
		go s.fanOutList(st, m, kind.items, kind.key, kind.capability, filter)
		return
	}
	bad := func(what string) {
		st.push(mcpwire.ErrorResponse(m.ID, mcpwire.CodeInvalidParams, what).Encode(), true)
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		idx, orig, ok := s.splitName(m.Name)
		if !ok {
			bad(fmt.Sprintf("unknown name %q", m.Name))
			return
		}
		s.forwardReplacing(st, m, idx, "name", orig, filter)
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		idx, orig, ok := s.splitURI(m.URI)
		if !ok {
			bad(fmt.Sprintf("unknown resource %q", m.URI))
			return
		}
		s.forwardReplacing(st, m, idx, "uri", orig, filter)
	case "completion/complete":
		var idx int
		var ok bool
		ref := map[string]string{"type": m.Ref.Type}
		switch m.Ref.Type {
		case "ref/prompt":
			idx, ref["name"], ok = s.splitName(m.Ref.Name)
		case "ref/resource":
			idx, ref["uri"], ok = s.splitURI(m.Ref.URI)
		}
		if !ok {
			bad("unknown completion reference")
			return
		}
		s.forwardReplacing(st, m, idx, "ref", ref, filter)
	case "logging/setLevel":
		go s.fanOut(st, m, "logging")
	default:
		st.push(mcpwire.ErrorResponse(m.ID, mcpwire.CodeMethodNotFound,
			fmt.Sprintf("method %q is not supported on an aggregated server", m.Method)).Encode(), true)
	}
}

// forwardReplacing forwards m to upstream idx with params member key set
// to value. The strict parse refused duplicate and case-variant members of
// params, so the map holds each member once and the upstream reads value
// whatever its decoder.
func (s *session) forwardReplacing(st *stream, m *mcpwire.Message, idx int, key string, value any, filter *scopeFilter) {
	params, err := replaceMember(m.Params, key, value)
	if err != nil {
		st.push(mcpwire.ErrorResponse(m.ID, mcpwire.CodeInvalidParams, "params must be an object").Encode(), true)
		return
	}
	s.forward(st, m, idx, params, filter)
}

// replaceMember returns the object params with member key set to value.
func replaceMember(params json.RawMessage, key string, value any) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil || p == nil {
		return nil, fmt.Errorf("params must be an object")
	}
	p[key], _ = json.Marshal(value)
	return json.Marshal(p)
}

// usable returns the upstreams that are up and declared capability.
func (s *session) usable(capability string) []*upConn {
	var out []*upConn
	for _, u := range s.ups {
		if u.err != nil {
			continue
		}
		u.mu.Lock()
		_, ok := u.caps[capability]
		u.mu.Unlock()
		if ok {
			out = append(out, u)
		}
	}
	return out
}

// fanOut sends m to every upstream with capability and answers {}.
func (s *session) fanOut(st *stream, m *mcpwire.Message, capability string) {
	var wg sync.WaitGroup
	for _, u := range s.usable(capability) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.await(s.ctx, u) == nil {
				_, _ = s.callInternal(u, m.Method, m.Params, u.spec.Timeout)
			}
		}()
	}
	wg.Wait()
	st.push(mcpwire.Response(m.ID, json.RawMessage("{}")).Encode(), true)
}

// maxListPages bounds how many pages the gateway reads from one upstream.
const maxListPages = 100

// fanOutList lists from every upstream (all pages), prefixes names, and
// answers with the merged list in one page.
func (s *session) fanOutList(st *stream, m *mcpwire.Message, itemsKey, nameKey, capability string, filter *scopeFilter) {
	s.retryAllRefused()
	ups := s.usable(capability)
	lists := make([][]json.RawMessage, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lists[i] = s.listAll(u, m.Method, itemsKey, nameKey)
		}()
	}
	wg.Wait()
	all := []json.RawMessage{}
	for _, l := range lists {
		all = append(all, l...)
	}
	res, _ := json.Marshal(map[string]any{itemsKey: all})
	if filter != nil {
		var ok bool
		if res, ok = filter.filterResult(m.Method, res); !ok {
			st.push(ambiguousAnswer(m.ID, s.b.name).Encode(), true)
			return
		}
	}
	st.push(mcpwire.Response(m.ID, res).Encode(), true)
}

func (s *session) listAll(u *upConn, method, itemsKey, nameKey string) []json.RawMessage {
	if s.await(s.ctx, u) != nil {
		return nil
	}
	var out []json.RawMessage
	cursor := ""
	for page := 0; page < maxListPages; page++ {
		var params json.RawMessage
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		res, err := s.callInternal(u, method, params, u.spec.Timeout)
		if err != nil || res.Error != nil {
			s.b.g.log.Warn("upstream list failed", "server", s.b.name, "upstream", u.spec.Name, "method", method)
			return out
		}
		// Read the page as strictly as requests are read: an item whose
		// name appears twice or in another case is dropped, so the name
		// the client sees is the one the gateway prefixed and filtered.
		r, err := mcpwire.Members(res.Result, itemsKey, "nextCursor")
		if err != nil {
			s.b.g.log.Warn("upstream sent an ambiguous list", "server", s.b.name, "upstream", u.spec.Name, "method", method)
			return out
		}
		var items []json.RawMessage
		_ = json.Unmarshal(r[0], &items)
		for _, raw := range items {
			key, err := mcpwire.Members(raw, nameKey)
			if err != nil {
				continue
			}
			v, ok := mcpwire.String(key[0])
			if !ok {
				continue
			}
			var it map[string]json.RawMessage
			if json.Unmarshal(raw, &it) != nil {
				continue
			}
			var exposed string
			if nameKey == "name" {
				exposed = exposedName(u.spec.Prefix, v)
				if exposed != u.spec.Prefix+nameSep+v {
					s.mu.Lock()
					s.names[exposed] = nameRef{up: u.idx, name: v}
					s.mu.Unlock()
				}
			} else {
				exposed = u.spec.Prefix + uriSep + v
			}
			it[nameKey], _ = json.Marshal(exposed)
			b, _ := json.Marshal(it)
			out = append(out, b)
		}
		cursor, _ = mcpwire.String(r[1])
		if cursor == "" {
			break
		}
	}
	return out
}

// rewriteNotification prefixes what an upstream notification names.
func (s *session) rewriteNotification(idx int, m *mcpwire.Message) *mcpwire.Message {
	if m.Method != "notifications/resources/updated" {
		return m
	}
	var p map[string]json.RawMessage
	if json.Unmarshal(m.Params, &p) != nil {
		return m
	}
	var uri string
	_ = json.Unmarshal(p["uri"], &uri)
	p["uri"], _ = json.Marshal(s.ups[idx].spec.Prefix + uriSep + uri)
	params, _ := json.Marshal(p)
	out := *m
	out.Params = params
	return &out
}

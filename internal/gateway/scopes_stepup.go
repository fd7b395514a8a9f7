package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// A refused call must not become a loop. A 403 insufficient_scope makes a
// client open the browser for step-up authorization (MCP 2026-07-28
// authorization §"Step-Up Authorization Flow"); when authorizing again
// cannot give the scope, every refused call opens the browser for nothing
// (through mcp-remote, two refused calls opened it four times and ended in
// "Unauthorized"). So the gateway challenges only when step-up can help,
// and otherwise answers the call, with HTTP 200, in words: a tool result
// with isError for tools/call (the model reads it), a JSON-RPC error for
// the rest. It tells which scope is missing, why authorizing again will not
// help, and who grants it.
//
// Step-up cannot help when:
//   - the advisor (Options.Advise: the policies, the client's registration
//     and the server's offered scopes, evaluated for this caller) says the
//     authorization server would not grant the scope; or
//   - this caller was already challenged for the scope and came back with a
//     token issued after the challenge that still lacks it: they authorized
//     again and did not get it (the advisor's view may differ from the
//     authorization server's: the user may have changed groups, the client
//     may not have asked). The second refusal for the same token lineage
//     is therefore words, not a second challenge.

// ScopeAdvice is what authorizing again would give a caller lacking
// scopes.
type ScopeAdvice struct {
	// Unobtainable are the scopes asked about that the caller cannot get
	// by authorizing again.
	Unobtainable []string
	// Why says, per unobtainable scope, why, and who would get it, in
	// words for the person and the model ("no policy gives it to you;
	// policy "admins" (when: ...) would").
	Why map[string]string
	// Contact is who grants missing permissions; "" when none is
	// configured.
	Contact string
}

// ScopeAdvisor tells whether the caller could obtain scopes on server by
// authorizing again. It runs only for refused requests, and may read the
// store.
type ScopeAdvisor func(ctx context.Context, server string, who *tokens.Claims, scopes []string) ScopeAdvice

// refuseScopes answers a POST whose token lacks scopes: a challenge when
// step-up can help, words otherwise (see above). Either way it is audited.
func (g *Gateway) refuseScopes(ctx context.Context, name string, fr *frontRequest, auth *AuthSpec, p *tokens.Claims, sf *scopeShortfall) error {
	advice := g.advise(ctx, name, p, sf.missing)
	if len(advice.Unobtainable) > 0 {
		g.audit(name, p, fr, "denied: insufficient scope, not grantable", http.StatusOK, 0)
		return scopeDenied(fr, sf, name, unobtainableText(advice))
	}
	if again := g.stepUps.stillLacking(p, sf.missing); len(again) > 0 {
		g.audit(name, p, fr, "denied: insufficient scope after step-up", http.StatusOK, 0)
		return scopeDenied(fr, sf, name, stillLackingText(again, advice.Contact))
	}
	g.stepUps.challenged(p, sf.missing)
	g.audit(name, p, fr, "denied: insufficient scope", http.StatusForbidden, 0)
	var id json.RawMessage
	for i, m := range fr.msgs {
		if sf.refused[i] {
			id = m.ID
			break
		}
	}
	return insufficientScopes(id, auth, sf)
}

// advise asks Options.Advise, through a short cache: the advisor may read
// the store, and a model retrying a refused call must not make every retry
// cost that.
func (g *Gateway) advise(ctx context.Context, server string, p *tokens.Claims, scopes []string) ScopeAdvice {
	if g.opts.Advise == nil {
		return ScopeAdvice{}
	}
	key := adviceKey{server: server, sub: p.Subject, client: p.ClientID, aud: p.Audience, scopes: strings.Join(scopes, " ")}
	if a, ok := g.stepUps.cachedAdvice(key); ok {
		return a
	}
	a := g.opts.Advise(ctx, server, p, scopes)
	g.stepUps.cacheAdvice(key, a)
	return a
}

// unobtainableText explains scopes policy will not grant.
func unobtainableText(a ScopeAdvice) string {
	var b strings.Builder
	for _, s := range a.Unobtainable {
		fmt.Fprintf(&b, " Scope %s: ", s)
		if why := a.Why[s]; why != "" {
			b.WriteString(why)
		} else {
			b.WriteString("the authorization server does not grant it to you")
		}
		b.WriteString(".")
	}
	b.WriteString(" Signing in or authorizing again will not help.")
	b.WriteString(contactText(a.Contact))
	return b.String()
}

// stillLackingText explains scopes a re-authorization did not bring.
func stillLackingText(scopes []string, contact string) string {
	return fmt.Sprintf(" The application was asked to obtain %s and authorized again, but its new token still does not carry it "+
		"(the application did not ask for it, or it was not granted). Authorizing again will not help.%s",
		strings.Join(scopes, " "), contactText(contact))
}

func contactText(contact string) string {
	if contact == "" {
		return " Ask an administrator of this gateway to grant it."
	}
	return " Ask for it: " + contact + "."
}

// scopeDenied answers each request of fr, with HTTP 200 so that no client
// takes it for a challenge: the refused ones with why (a tool result with
// isError for tools/call), the others of a batch with what stopped them.
// A POST of notifications only gets a 403 without a challenge.
func scopeDenied(fr *frontRequest, sf *scopeShortfall, server, why string) *rpcError {
	stateless := fr.isStateless()
	phrase := map[*mcpwire.Message]string{}
	k := 0
	for i, m := range fr.msgs {
		if sf.refused[i] {
			phrase[m] = sf.phrases[k]
			k++
		}
	}
	answer := func(m *mcpwire.Message) *mcpwire.Message {
		text := "Not run: another message of this batch needs a permission you lack (see its answer)."
		if p, ok := phrase[m]; ok {
			text = fmt.Sprintf("Permission missing on server %q: %s.%s", server, p, why)
		}
		if m.Method == "tools/call" {
			return scopeToolError(m, text, stateless)
		}
		return mcpwire.ErrorResponse(m.ID, mcpwire.CodeInsufficientScope, text)
	}
	e := answerEach(http.StatusOK, fr, answer)
	if len(e.Answers) == 0 {
		return refuse(http.StatusForbidden, mcpwire.CodeInsufficientScope,
			fmt.Sprintf("insufficient scope: %s.%s", strings.Join(sf.phrases, "; "), why))
	}
	return e
}

// scopeToolError is the tool result with isError answering m with text;
// for a 2026-07-28 request it carries resultType, which "servers
// implementing this protocol version MUST include" (2026-07-28 schema,
// Result).
func scopeToolError(m *mcpwire.Message, text string, stateless bool) *mcpwire.Message {
	if !stateless {
		return toolErrorMessage(m, text)
	}
	res, _ := json.Marshal(map[string]any{"content": []map[string]string{{"type": "text", "text": text}}, "isError": true, "resultType": "complete"})
	return mcpwire.Response(m.ID, res)
}

// stepUpMemory remembers, per token lineage (user, client, audience) and
// scope, the last challenge sent: when, and to which token. Bounded in
// size and age; losing an entry costs at most one more challenge.
type stepUpMemory struct {
	mu     sync.Mutex
	now    func() time.Time
	m      map[stepUpKey]stepUpEntry
	advice map[adviceKey]adviceEntry // the advisor's recent answers
}

// adviceKey is one question to the advisor. The token's roles and groups
// are not in it: they are the same for a lineage until it authorizes again,
// and a cached answer lives adviceTTL only.
type adviceKey struct{ server, sub, client, aud, scopes string }

type adviceEntry struct {
	at time.Time
	a  ScopeAdvice
}

// adviceTTL is how long an advisor's answer is reused: short, so that a
// policy or group change shows soon.
const adviceTTL = 30 * time.Second

func (m *stepUpMemory) cachedAdvice(k adviceKey) (ScopeAdvice, bool) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.advice[k]
	if !ok || now.Sub(e.at) > adviceTTL {
		return ScopeAdvice{}, false
	}
	return e.a, true
}

func (m *stepUpMemory) cacheAdvice(k adviceKey, a ScopeAdvice) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.advice) >= stepUpMax {
		for k, e := range m.advice {
			if now.Sub(e.at) > adviceTTL {
				delete(m.advice, k)
			}
		}
		if len(m.advice) >= stepUpMax {
			clear(m.advice)
		}
	}
	m.advice[k] = adviceEntry{at: now, a: a}
}

type stepUpKey struct{ sub, client, aud, scope string }

type stepUpEntry struct {
	at  time.Time // when the challenge was sent
	jti string    // the token it was sent to
	iat time.Time
}

const (
	// stepUpTTL is how long a challenge is remembered: long enough for a
	// person to sign in and consent.
	stepUpTTL = 15 * time.Minute
	// stepUpMax bounds the entries: tokens come from clients.
	stepUpMax = 10000
)

func newStepUpMemory(now func() time.Time) *stepUpMemory {
	return &stepUpMemory{now: now, m: map[stepUpKey]stepUpEntry{}, advice: map[adviceKey]adviceEntry{}}
}

func lineage(p *tokens.Claims, scope string) stepUpKey {
	return stepUpKey{sub: p.Subject, client: p.ClientID, aud: p.Audience, scope: scope}
}

// challenged records a challenge for scopes sent to p.
func (m *stepUpMemory) challenged(p *tokens.Claims, scopes []string) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range scopes {
		if len(m.m) >= stepUpMax {
			m.evict(now)
		}
		m.m[lineage(p, s)] = stepUpEntry{at: now, jti: p.ID, iat: p.IssuedAt}
	}
}

// evict drops expired entries, and one more if none was.
func (m *stepUpMemory) evict(now time.Time) {
	n := len(m.m)
	for k, e := range m.m {
		if now.Sub(e.at) > stepUpTTL {
			delete(m.m, k)
		}
	}
	if len(m.m) < n {
		return
	}
	for k := range m.m {
		delete(m.m, k)
		return
	}
}

// stillLacking returns the scopes of scopes that p's lineage was
// challenged for and that p, a token issued after that challenge (so the
// client authorized again), still lacks.
func (m *stepUpMemory) stillLacking(p *tokens.Claims, scopes []string) []string {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range scopes {
		e, ok := m.m[lineage(p, s)]
		if !ok || now.Sub(e.at) > stepUpTTL {
			continue
		}
		same := p.ID == e.jti && (p.ID != "" || p.IssuedAt.Equal(e.iat))
		// iat has whole seconds: a token of the challenge's second counts
		// as issued after it (it is not the challenged one).
		if !same && !p.IssuedAt.Before(e.at.Truncate(time.Second)) {
			out = append(out, s)
		}
	}
	return out
}

package mcpwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// One reading of every message.
//
// The gateway decides on what a message says (the method, the id, the tool
// or resource it names) and then hands the message to an upstream that reads
// it again with its own decoder. Decoders disagree on two things JSON leaves
// open: duplicate member names (RFC 8259 §4: "the names within an object
// SHOULD be unique"; some take the first, most the last) and letter case
// (RFC 8259 §8.3 compares names code unit by code unit, but Go's
// encoding/json, .NET and Jackson in some modes fold case). A message such as
// {"name":"admin_tool","Name":"echo"} is then two messages: one the scope
// check approves and another the upstream runs.
//
// The strict parse closes that gap at the root. In every object whose
// members the gateway interprets (the envelope, params, params._meta,
// params.ref, and error) it refuses
//   - a member name given twice (after unescaping: "na\u006de" is "name"),
//   - a case variant of an interpreted name ("Name", "NAME", "ſcope"-style
//     Unicode folds, or "ıd"-style upper/lower mappings) next to or instead
//     of the exact name,
// and it refuses invalid UTF-8, lone surrogate escapes in interpreted
// strings, non-canonical numeric ids, and anything that is not exactly one
// JSON value. Deeper values (tool arguments, results) are checked for syntax
// only: the gateway never reads them.
//
// How: the standard library's scanner (json.Valid) and utf8.Valid judge
// syntax; a small walker over the validated bytes then reads the members.
// No library does the rest: github.com/go-json-experiment/json (and
// encoding/json/v2, which go1.26 offers only with GOEXPERIMENT=jsonv2)
// refuses exact duplicates but takes "Name" for a different member than
// "name", which is the very gap. FuzzParse holds the walker to
// encoding/json on every input.
//
// What is forwarded: the original bytes. Once the strict parse accepted them,
// every interpreted member occurs exactly once and has no case-folded twin,
// so an exact-name decoder, a case-insensitive one, a first-wins and a
// last-wins one all read the same method, id, name and URI the gateway read.
// Re-encoding would cost a second pass and an allocation per message on the
// hot path and prove nothing more. Messages the bridge rebuilds (new ids,
// prefixed names) are encoded from the parsed value by Encode.

// ErrInvalidParams is wrapped by Parse errors for a request whose params
// are ambiguous or lack what the method requires (JSON-RPC -32602).
var ErrInvalidParams = errors.New("invalid params")

// ErrorCode maps a Parse error to its JSON-RPC error code.
func ErrorCode(err error) int {
	switch {
	case errors.Is(err, ErrParse):
		return CodeParseError
	case errors.Is(err, ErrInvalidParams):
		return CodeInvalidParams
	default:
		return CodeInvalidRequest
	}
}

// maxSafeInteger bounds numeric ids and progress tokens to integers every
// peer represents exactly (RFC 7493 §2.2; JavaScript's 2^53-1), so an
// upstream echoing an id cannot change its value.
const maxSafeIntegerDigits = 16

var maxSafeInteger = []byte("9007199254740991")

// Parse reads an HTTP body or stdio line holding one JSON-RPC message or a
// batch, strictly (see the comment at the top of this file). The messages
// alias data: the caller must not modify data afterwards.
func Parse(data []byte) (msgs []*Message, batch bool, err error) {
	if !utf8.Valid(data) {
		return nil, false, fmt.Errorf("%w: body is not valid UTF-8", ErrParse)
	}
	body := bytes.TrimLeft(data, " \t\r\n")
	if len(body) == 0 {
		return nil, false, fmt.Errorf("%w: empty body", ErrParse)
	}
	// The standard library's scanner is the judge of syntax: exactly one
	// RFC 8259 value, nothing but whitespace after it, no byte-order mark.
	if !json.Valid(body) {
		return nil, body[0] == '[', fmt.Errorf("%w: not a single well-formed JSON value", ErrParse)
	}
	if body[0] != '[' {
		m, err := parseObject(body)
		if err != nil {
			return nil, false, err
		}
		return []*Message{m}, false, nil
	}
	s := scanner{data: body, i: 1}
	for s.skipWS(); s.peek() != ']'; s.skipWS() {
		if len(msgs) > 0 {
			s.i++ // ','
			s.skipWS()
		}
		start := s.i
		s.skipValue()
		m, err := parseObject(body[start:s.i])
		if err != nil {
			return nil, true, err
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil, true, fmt.Errorf("%w: empty batch", ErrInvalidMessage)
	}
	if err := uniqueRequestIDs(msgs); err != nil {
		return nil, true, err
	}
	return msgs, true, nil
}

// uniqueRequestIDs refuses a batch with two requests under one id: their
// answers could not be told apart (and a list answer could be taken for
// another request's).
func uniqueRequestIDs(msgs []*Message) error {
	if len(msgs) < 2 {
		return nil
	}
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if !m.IsRequest() {
			continue
		}
		k := IDKey(m.ID)
		if seen[k] {
			return fmt.Errorf("%w: two requests of the batch share the id %s", ErrInvalidMessage, m.ID)
		}
		seen[k] = true
	}
	return nil
}

// Envelope members (JSON-RPC 2.0 §4, §5).
var envelopeNames = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// Members of params the gateway interprets, for any method: what the scope
// check, router and audit read (name, uri, ref), what the bridge reads
// (_meta for the progress token and the protocol version, requestId of a
// cancellation, progressToken of a progress notification, protocolVersion
// of initialize), and cursor, which the aggregator sets.
//
// inputResponses and requestState (2026-07-28 multi round-trip requests,
// SEP-2322) are what the bridge's era translator reads to route a retried
// request back to the upstream request waiting on the client.
var paramNames = []string{"name", "uri", "_meta", "ref", "requestId", "progressToken", "protocolVersion", "cursor", "inputResponses", "requestState"}

// Members of params._meta the gateway interprets (MCP 2025-11-25
// basic/utilities/progress; 2026-07-28 per-request metadata, SEP-2575).
const (
	MetaProtocolVersion = "io.modelcontextprotocol/protocolVersion"
	// The rest of the 2026-07-28 per-request triple, what initialize
	// carried before (SEP-2575), and the per-request log level.
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaLogLevel           = "io.modelcontextprotocol/logLevel"
	// MetaSubscriptionID tags a notification of a subscriptions/listen
	// stream with the id of the listen request; MetaServerInfo names the
	// server on a result (2026-07-28).
	MetaSubscriptionID = "io.modelcontextprotocol/subscriptionId"
	MetaServerInfo     = "io.modelcontextprotocol/serverInfo"
)

var metaNames = []string{"progressToken", MetaProtocolVersion,
	"io.modelcontextprotocol/clientInfo", "io.modelcontextprotocol/clientCapabilities",
	"io.modelcontextprotocol/logLevel", "io.modelcontextprotocol/subscriptionId"}

// Members of params.ref (completion/complete) and of a JSON-RPC error.
var refNames = []string{"type", "name", "uri"}
var errorNames = []string{"code", "message", "data"}

// members reads the members of the object obj, refusing duplicate names
// and case variants of any name in interp. It returns the members whose
// name is in interp, in interp's order (nil where absent). ambiguous wraps
// the error class to report (ErrInvalidMessage or ErrInvalidParams).
func members(obj []byte, interp []string, out [][]byte, ambiguous error) error {
	s := scanner{data: obj, i: 1}
	var names [12][]byte // small objects: no allocation
	seen := names[:0]
	var many map[string]struct{} // large objects: no quadratic search
	for s.skipWS(); s.peek() != '}'; s.skipWS() {
		if s.peek() == ',' {
			s.i++
			s.skipWS()
		}
		raw := s.readString()
		name, ok := unquoteBytes(raw)
		if !ok {
			return fmt.Errorf("%w: member name %s is not valid Unicode", ambiguous, raw)
		}
		s.skipWS()
		s.i++ // ':'
		s.skipWS()
		start := s.i
		s.skipValue()
		dup := false
		if many == nil {
			for _, n := range seen {
				dup = dup || bytes.Equal(n, name)
			}
			if len(seen) < cap(names) {
				seen = append(seen, name)
			} else {
				many = nameSet(seen)
			}
		}
		if many != nil {
			_, dup = many[string(name)]
			many[string(name)] = struct{}{}
		}
		if dup {
			return fmt.Errorf("%w: member %q appears twice", ambiguous, name)
		}
		for k, want := range interp {
			if string(name) == want {
				out[k] = obj[start:s.i]
			} else if foldsTo(name, want) {
				return fmt.Errorf("%w: member %q is a case variant of %q", ambiguous, name, want)
			}
		}
	}
	return nil
}

// nameSet moves the names of a large object into a map, so duplicate
// detection stays linear in its size.
func nameSet(names [][]byte) map[string]struct{} {
	m := make(map[string]struct{}, 4*len(names))
	for _, n := range names {
		m[string(n)] = struct{}{}
	}
	return m
}

// foldsTo reports whether name, which differs from want, would be taken
// for want by a case-insensitive decoder: Unicode simple folding (Go's
// encoding/json, bytes.EqualFold) or upper/lower-case mapping (.NET's
// OrdinalIgnoreCase maps 'ı' to 'I', Java's toLowerCase 'K' to 'k').
func foldsTo(name []byte, want string) bool {
	ascii := true
	for _, c := range name {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return len(name) == len(want) && mapsTo(name, want, lowerASCII)
	}
	// Every mapping here is rune for rune and the names are ASCII, so
	// only names of as many runes can match.
	if utf8.RuneCount(name) != len(want) {
		return false
	}
	return bytes.EqualFold(name, []byte(want)) || mapsTo(name, want, unicode.ToUpper) || mapsTo(name, want, unicode.ToLower)
}

// mapsTo reports whether name and the ASCII name want are equal once f
// maps each rune of both.
func mapsTo(name []byte, want string, f func(rune) rune) bool {
	i := 0
	for _, r := range string(name) {
		if i >= len(want) || f(r) != f(rune(want[i])) {
			return false
		}
		i++
	}
	return i == len(want)
}

func lowerASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

// parseObject reads one message (an element of a batch, or the body).
func parseObject(obj []byte) (*Message, error) {
	if obj[0] != '{' {
		return nil, fmt.Errorf("%w: a message must be a JSON object", ErrInvalidMessage)
	}
	var v [6][]byte
	if err := members(obj, envelopeNames, v[:], ErrInvalidMessage); err != nil {
		return nil, err
	}
	jsonrpc, id, method, params, result, errObj := v[0], v[1], v[2], v[3], v[4], v[5]
	// Some JSON-RPC libraries write the member a response does not use as
	// null ("error":null next to a result); null says nothing either way.
	if method == nil && string(errObj) == "null" {
		errObj = nil
	}
	if method == nil && string(result) == "null" && errObj != nil {
		result = nil
	}
	m := &Message{ID: id, Params: params, Result: result}
	if s, ok := stringBytes(jsonrpc); !ok || string(s) != "2.0" {
		return nil, fmt.Errorf("%w: jsonrpc must be \"2.0\"", ErrInvalidMessage)
	}
	m.JSONRPC = "2.0"
	if id != nil && !validID(id) {
		return nil, fmt.Errorf("%w: id must be a string, an integer (|n| < 2^53, no fraction or exponent) or null", ErrInvalidMessage)
	}
	if errObj != nil {
		e, err := parseError(errObj)
		if err != nil {
			return nil, err
		}
		m.Error = e
	}
	switch {
	case method != nil:
		s, ok := stringValue(method)
		if !ok || s == "" {
			return nil, fmt.Errorf("%w: method must be a non-empty string", ErrInvalidMessage)
		}
		m.Method = s
		if result != nil || errObj != nil {
			return nil, fmt.Errorf("%w: a request must not carry result or error", ErrInvalidMessage)
		}
		if id != nil && id[0] == 'n' {
			// MCP 2025-11-25 basic §"Requests": the id MUST NOT be null.
			return nil, fmt.Errorf("%w: a request id must not be null", ErrInvalidMessage)
		}
		if err := m.readParams(); err != nil {
			return nil, err
		}
	case result != nil && errObj != nil:
		return nil, fmt.Errorf("%w: a response carries result or error, not both", ErrInvalidMessage)
	case result != nil || errObj != nil:
		if params != nil && string(params) != "null" {
			return nil, fmt.Errorf("%w: a response must not carry params", ErrInvalidMessage)
		}
		if !m.HasID() && m.Error == nil {
			return nil, fmt.Errorf("%w: a response needs an id", ErrInvalidMessage)
		}
	default:
		return nil, fmt.Errorf("%w: neither method nor result nor error", ErrInvalidMessage)
	}
	return m, nil
}

func parseError(obj []byte) (*Error, error) {
	if obj[0] != '{' {
		return nil, fmt.Errorf("%w: error must be an object", ErrInvalidMessage)
	}
	var v [3][]byte
	if err := members(obj, errorNames, v[:], ErrInvalidMessage); err != nil {
		return nil, err
	}
	e := &Error{Data: v[2]}
	if v[0] == nil || !isInteger(v[0]) || len(v[0]) > 11 {
		return nil, fmt.Errorf("%w: error.code must be an integer", ErrInvalidMessage)
	}
	if err := json.Unmarshal(v[0], &e.Code); err != nil {
		return nil, fmt.Errorf("%w: error.code must be an integer", ErrInvalidMessage)
	}
	msg, ok := stringValue(v[1])
	if !ok {
		return nil, fmt.Errorf("%w: error.message must be a string", ErrInvalidMessage)
	}
	e.Message = msg
	return e, nil
}

// readParams reads the members of params the gateway interprets.
func (m *Message) readParams() error {
	p := m.Params
	if p == nil || string(p) == "null" {
		return m.requireTarget()
	}
	if p[0] != '{' {
		return fmt.Errorf("%w: params must be an object", ErrInvalidParams)
	}
	var v [10][]byte
	if err := members(p, paramNames, v[:], ErrInvalidParams); err != nil {
		return err
	}
	name, uri, meta, ref, requestID, token := v[0], v[1], v[2], v[3], v[4], v[5]
	var ok bool
	if name != nil {
		if m.Name, ok = stringValue(name); !ok && namesTarget(m.Method) == "name" {
			return fmt.Errorf("%w: params.name must be a string", ErrInvalidParams)
		}
	}
	if uri != nil {
		if m.URI, ok = stringValue(uri); !ok && namesTarget(m.Method) == "uri" {
			return fmt.Errorf("%w: params.uri must be a string", ErrInvalidParams)
		}
	}
	if meta != nil {
		if err := m.readMeta(meta); err != nil {
			return err
		}
	}
	if ref != nil && m.Method == "completion/complete" {
		if err := m.readRef(ref); err != nil {
			return err
		}
	}
	if requestID != nil && m.Method == "notifications/cancelled" {
		if !validID(requestID) {
			return fmt.Errorf("%w: params.requestId must be a string or an integer", ErrInvalidParams)
		}
		m.RequestID = requestID
	}
	if token != nil && m.Method == "notifications/progress" {
		if !validID(token) || token[0] == 'n' {
			return fmt.Errorf("%w: params.progressToken must be a string or an integer", ErrInvalidParams)
		}
		m.ProgressToken = token
	}
	return m.requireTarget()
}

// requireTarget refuses a call that does not name what it touches: the
// scope check needs the name (MCP: params.name of tools/call and
// prompts/get, params.uri of resources/read are required).
func (m *Message) requireTarget() error {
	switch namesTarget(m.Method) {
	case "name":
		if m.Name == "" {
			return fmt.Errorf("%w: %s needs params.name", ErrInvalidParams, m.Method)
		}
	case "uri":
		if m.URI == "" {
			return fmt.Errorf("%w: %s needs params.uri", ErrInvalidParams, m.Method)
		}
	}
	return nil
}

// namesTarget says which member of params names what method touches.
func namesTarget(method string) string {
	switch method {
	case "tools/call", "prompts/get":
		return "name"
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return "uri"
	}
	return ""
}

func (m *Message) readMeta(meta []byte) error {
	if meta[0] == 'n' {
		return nil
	}
	if meta[0] != '{' {
		return fmt.Errorf("%w: params._meta must be an object", ErrInvalidParams)
	}
	var v [6][]byte
	if err := members(meta, metaNames, v[:], ErrInvalidParams); err != nil {
		return err
	}
	if t := v[0]; t != nil {
		if !validID(t) || t[0] == 'n' {
			return fmt.Errorf("%w: _meta.progressToken must be a string or an integer", ErrInvalidParams)
		}
		m.ProgressToken = t
	}
	if pv := v[1]; pv != nil {
		s, ok := stringValue(pv)
		if !ok || s == "" {
			return fmt.Errorf("%w: _meta[%q] must be a string", ErrInvalidParams, MetaProtocolVersion)
		}
		m.MetaVersion = s
	}
	return nil
}

func (m *Message) readRef(ref []byte) error {
	if ref[0] != '{' {
		return fmt.Errorf("%w: params.ref must be an object", ErrInvalidParams)
	}
	var v [3][]byte
	if err := members(ref, refNames, v[:], ErrInvalidParams); err != nil {
		return err
	}
	var ok [3]bool
	m.Ref.Type, ok[0] = stringValue(v[0])
	m.Ref.Name, ok[1] = stringValue(v[1])
	m.Ref.URI, ok[2] = stringValue(v[2])
	for i, raw := range v {
		if raw != nil && !ok[i] {
			return fmt.Errorf("%w: params.ref.%s must be a string", ErrInvalidParams, refNames[i])
		}
	}
	return nil
}

// stringValue returns the string a raw JSON value holds; ok is false for
// other values and for strings with lone surrogates, which decoders read
// differently (RFC 7493 §2.1).
func stringValue(raw []byte) (string, bool) {
	b, ok := stringBytes(raw)
	return string(b), ok
}

// stringBytes is stringValue without the copy when nothing is escaped.
func stringBytes(raw []byte) ([]byte, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return nil, false
	}
	return unquoteBytes(raw)
}

// validID reports whether raw is an id JSON-RPC and MCP allow and every
// peer echoes unchanged: a string, null, or an integer in canonical form
// (no fraction, exponent, leading zero or "-0") within ±(2^53-1).
func validID(raw []byte) bool {
	switch raw[0] {
	case '"':
		_, ok := unquoteBytes(raw)
		return ok
	case 'n':
		return true // "null": the caller decides where it is allowed
	}
	return isInteger(raw) && safeInteger(raw)
}

func isInteger(raw []byte) bool {
	d := raw
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || (d[0] == '0' && (len(d) > 1 || raw[0] == '-')) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func safeInteger(raw []byte) bool {
	d := bytes.TrimPrefix(raw, []byte("-"))
	if len(d) != maxSafeIntegerDigits {
		return len(d) < maxSafeIntegerDigits
	}
	return bytes.Compare(d, maxSafeInteger) <= 0
}

// IDKey is a map key for an id or progress token that compares by value:
// "a\u0062" and "ab" are one id, as a peer that re-encodes an id it echoes
// would have it. Numbers are canonical already (see validID).
func IDKey(raw []byte) string {
	if len(raw) == 0 || raw[0] != '"' || bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	s, ok := unquoteBytes(raw)
	if !ok {
		return string(raw)
	}
	return `"` + string(s) + `"`
}

// unquoteBytes decodes a JSON string the scanner delimited (so
// well-formed), refusing lone surrogates. Without escapes it returns a
// sub-slice of raw.
func unquoteBytes(raw []byte) ([]byte, bool) {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body, true
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch e := body[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(body[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
					return nil, false
				}
				r = utf16.DecodeRune(r, hex4(body[i+2:i+6]))
				if r == utf8.RuneError {
					return nil, false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		}
		i += 2
	}
	return out, true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// scanner walks JSON that json.Valid accepted; it never sees bad syntax.
type scanner struct {
	data []byte
	i    int
}

func (s *scanner) peek() byte { return s.data[s.i] }

func (s *scanner) skipWS() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// readString returns the string at s.i, quotes included.
func (s *scanner) readString() []byte {
	start := s.i
	s.skipString()
	return s.data[start:s.i]
}

func (s *scanner) skipString() {
	i := s.i + 1
	for {
		j := bytes.IndexByte(s.data[i:], '"')
		i += j
		// The quote ends the string unless an odd run of backslashes
		// precedes it.
		k := i - 1
		for s.data[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 {
			s.i = i + 1
			return
		}
		i++
	}
}

func (s *scanner) skipValue() {
	switch s.data[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for {
			switch s.data[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // number, true, false, null
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return
			}
			s.i++
		}
	}
}

// Members reads the JSON object obj as strictly as Parse reads params: a
// member name given twice, or a case variant of one of names, is an error
// (wrapping ErrInvalidMessage). It returns the values of names, in order,
// nil where absent. The gateway uses it on what it interprets in upstream
// answers (list results), so a client cannot be shown what the filter did
// not read.
func Members(obj []byte, names ...string) ([]json.RawMessage, error) {
	obj = bytes.TrimSpace(obj)
	if !utf8.Valid(obj) || !json.Valid(obj) || obj[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidMessage)
	}
	vals := make([][]byte, len(names))
	if err := members(obj, names, vals, ErrInvalidMessage); err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out, nil
}

// String returns the string a raw JSON value holds; ok is false for other
// values and strings with lone surrogates.
func String(raw []byte) (s string, ok bool) { return stringValue(raw) }

// IsSafeID reports whether raw is an id the gateway may echo: a string of
// valid Unicode or a safe integer (not null, not absent).
func IsSafeID(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] != 'n' && json.Valid(raw) && validID(raw)
}

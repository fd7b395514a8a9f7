package mcpwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// JSON-RPC 2.0 error codes (JSON-RPC 2.0 §5.1) and the gateway's own codes in
// the implementation-defined server-error range (-32000..-32099).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	// CodeUnsupportedVersion: the MCP-Protocol-Version is not one the
	// gateway speaks (MCP 2026-07-28 basic/transports).
	CodeUnsupportedVersion = -32022

	// CodeHeaderMismatch: the Mcp-Method, Mcp-Name or MCP-Protocol-Version
	// header disagrees with the body (MCP 2026-07-28 basic/transports/
	// streamable-http §"Server Validation"), sent with HTTP 400.
	CodeHeaderMismatch = -32020

	// CodeMissingCapability: the request needs a client capability the
	// client did not declare in its _meta (MCP 2026-07-28,
	// MissingRequiredClientCapabilityError, SEP-2575), sent with HTTP 400.
	CodeMissingCapability = -32021

	// CodeInsufficientScope: the token lacks the scope a tool, resource or
	// prompt needs (sent with HTTP 403 and an insufficient_scope challenge).
	CodeInsufficientScope = -32012

	// CodeUpstreamUnavailable: the upstream could not be reached or failed
	// before it answered. The message names the upstream.
	CodeUpstreamUnavailable = -32010
	// CodeUpstreamTimeout: the upstream did not answer within its timeout.
	CodeUpstreamTimeout = -32011
)

// Message is one JSON-RPC 2.0 message with its payload left raw. Exactly one
// of the three shapes holds: a request (Method and ID), a notification
// (Method, no ID) or a response (ID and Result or Error).
type Message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`

	// What the strict parse read from params (see Parse), so that the
	// scope check, the router and the audit line use one reading. Only
	// parsed messages carry them; they are never encoded.

	// Name is params.name when it is a string (tools/call, prompts/get).
	Name string `json:"-"`
	// URI is params.uri when it is a string (resources/read, ...).
	URI string `json:"-"`
	// Ref is params.ref of completion/complete.
	Ref Ref `json:"-"`
	// ProgressToken is params._meta.progressToken of a request, or
	// params.progressToken of notifications/progress.
	ProgressToken json.RawMessage `json:"-"`
	// MetaVersion is params._meta["io.modelcontextprotocol/protocolVersion"]
	// (2026-07-28 per-request metadata).
	MetaVersion string `json:"-"`
	// RequestID is params.requestId of notifications/cancelled.
	RequestID json.RawMessage `json:"-"`
}

// Ref is what completion/complete completes: a prompt or a resource
// template (MCP 2025-11-25 server/utilities/completion).
type Ref struct{ Type, Name, URI string }

// Error is a JSON-RPC error object.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// HasID reports whether the message carries a non-null id.
func (m *Message) HasID() bool { return len(m.ID) > 0 && !bytes.Equal(m.ID, nullID) }

// IsRequest reports whether m is a request (expects a response).
func (m *Message) IsRequest() bool { return m.Method != "" && m.HasID() }

// IsNotification reports whether m is a notification.
func (m *Message) IsNotification() bool { return m.Method != "" && !m.HasID() }

// IsResponse reports whether m is a response to a request.
func (m *Message) IsResponse() bool { return m.Method == "" && (m.Result != nil || m.Error != nil) }

var nullID = json.RawMessage("null")

// ErrInvalidMessage is wrapped by Parse errors for JSON that is well-formed
// but not a JSON-RPC 2.0 message.
var ErrInvalidMessage = errors.New("invalid JSON-RPC message")

// ErrParse is wrapped by Parse errors for bodies that are not JSON.
var ErrParse = errors.New("parse error")

// ParseBody is Parse on a private copy of body, for callers that reuse
// their buffer (a bufio.Scanner line).
func ParseBody(body []byte) (msgs []*Message, batch bool, err error) {
	return Parse(bytes.Clone(body))
}

// ParseMessage parses one message (not a batch) strictly, from a private
// copy of data.
func ParseMessage(data []byte) (*Message, error) {
	msgs, batch, err := Parse(bytes.Clone(data))
	if err != nil {
		return nil, err
	}
	if batch {
		return nil, fmt.Errorf("%w: a batch where one message was expected", ErrInvalidMessage)
	}
	return msgs[0], nil
}

// Encode marshals m. It never fails for messages built from parsed input.
func (m *Message) Encode() []byte {
	c := *m // never mutate: one message may be sent to several upstreams at once
	c.JSONRPC = "2.0"
	b, err := json.Marshal(&c)
	if err != nil {
		// Only invalid RawMessage content can fail; report it as an
		// internal error rather than sending broken JSON.
		b, _ = json.Marshal(ErrorResponse(m.ID, CodeInternalError, "gateway could not encode a message"))
	}
	return b
}

// ErrorResponse builds an error response to the request with the given id
// (nil or empty for "null", as JSON-RPC requires when the id is unknown).
func ErrorResponse(id json.RawMessage, code int, message string) *Message {
	if len(id) == 0 {
		id = nullID
	}
	return &Message{JSONRPC: "2.0", ID: id, Error: &Error{Code: code, Message: message}}
}

// Response builds a successful response.
func Response(id json.RawMessage, result json.RawMessage) *Message {
	return &Message{JSONRPC: "2.0", ID: id, Result: result}
}

// Notification builds a notification.
func Notification(method string, params json.RawMessage) *Message {
	return &Message{JSONRPC: "2.0", Method: method, Params: params}
}

// Request builds a request.
func Request(id json.RawMessage, method string, params json.RawMessage) *Message {
	return &Message{JSONRPC: "2.0", ID: id, Method: method, Params: params}
}

// EncodeBatch marshals messages as a JSON array.
func EncodeBatch(msgs []*Message) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, m := range msgs {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(m.Encode())
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

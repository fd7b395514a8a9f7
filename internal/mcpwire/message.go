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
}

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

// ParseBody decodes an HTTP body holding one message or a batch (a JSON
// array, allowed by protocol 2025-03-26). It fails with ErrParse for
// malformed JSON and ErrInvalidMessage for JSON that is not JSON-RPC.
func ParseBody(body []byte) (msgs []*Message, batch bool, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, fmt.Errorf("%w: empty body", ErrParse)
	}
	if body[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, true, fmt.Errorf("%w: %v", ErrParse, err)
		}
		if len(raws) == 0 {
			return nil, true, fmt.Errorf("%w: empty batch", ErrInvalidMessage)
		}
		msgs = make([]*Message, 0, len(raws))
		for _, raw := range raws {
			m, err := ParseMessage(raw)
			if err != nil {
				return nil, true, err
			}
			msgs = append(msgs, m)
		}
		return msgs, true, nil
	}
	m, err := ParseMessage(body)
	if err != nil {
		return nil, false, err
	}
	return []*Message{m}, false, nil
}

// ParseMessage decodes and checks one JSON-RPC message.
func ParseMessage(data []byte) (*Message, error) {
	m := new(Message)
	if err := json.Unmarshal(data, m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(data) {
			return nil, fmt.Errorf("%w: %v", ErrParse, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Message) check() error {
	if m.JSONRPC != "2.0" {
		return fmt.Errorf("%w: jsonrpc must be \"2.0\"", ErrInvalidMessage)
	}
	if len(m.ID) > 0 {
		switch m.ID[0] {
		case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		default:
			return fmt.Errorf("%w: id must be a string or a number", ErrInvalidMessage)
		}
	}
	switch {
	case m.Method != "":
		if m.Result != nil || m.Error != nil {
			return fmt.Errorf("%w: a request must not carry result or error", ErrInvalidMessage)
		}
	case m.Result != nil || m.Error != nil:
		if !m.HasID() && m.Error == nil {
			return fmt.Errorf("%w: a response needs an id", ErrInvalidMessage)
		}
	default:
		return fmt.Errorf("%w: neither method nor result nor error", ErrInvalidMessage)
	}
	return nil
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

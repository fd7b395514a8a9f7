package connector

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// ProtocolV1 is the WebSocket subprotocol of this wire format.
const ProtocolV1 = "mcpgate-connector.v1"

// Path is where the gateway accepts connectors.
const Path = "/connector/v1"

// Scope is the scope a connector's access token must carry.
const Scope = "mcpgate:connector"

// Limits of the wire format.
const (
	MaxFrame     = 16 << 10 // one control or open frame
	MaxUpstreams = 64       // upstreams one hello may announce
	maxText      = 256      // names, versions, addresses
)

// Frame kinds.
const (
	KindHello   = "hello"
	KindWelcome = "welcome"
	KindReauth  = "reauth"
	KindOpen    = "open"
	KindResult  = "result"
	KindError   = "error"
)

// Frame is every field any frame may carry; Kind says which apply.
type Frame struct {
	Kind string `json:"kind"`
	// hello
	Name      string         `json:"name,omitempty"`
	Instance  string         `json:"instance,omitempty"`
	Version   string         `json:"version,omitempty"`
	Upstreams []UpstreamInfo `json:"upstreams,omitempty"`
	// reauth
	Token string `json:"token,omitempty"`
	// open: Address (a byte pipe to host:port) or Command (the connector's
	// stdio process with that argv), never both
	Upstream string   `json:"upstream,omitempty"`
	Address  string   `json:"address,omitempty"`
	Command  []string `json:"command,omitempty"`
	// result, error, welcome
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
	// welcome: how long before its token expires the connector must reauth.
	ReauthSeconds int `json:"reauth_seconds,omitempty"`
}

// UpstreamInfo is an upstream a connector serves, as its hello announces.
type UpstreamInfo struct {
	Name    string   `json:"name"`
	Address string   `json:"address,omitempty"` // host:port it dials, or
	Command []string `json:"command,omitempty"` // the argv of the stdio process it runs
}

// String is "name=host:port", or "name=stdio:program" for a command.
func (u UpstreamInfo) String() string {
	if len(u.Command) > 0 {
		return u.Name + "=stdio:" + u.Command[0]
	}
	return u.Name + "=" + u.Address
}

// Limits of a command in frames.
const (
	maxArgs   = 64
	maxArgLen = 4096
)

// checkCommand accepts an argv of 1..maxArgs arguments, none empty (the
// program) or holding NUL.
func checkCommand(cmd []string) error {
	if len(cmd) == 0 || len(cmd) > maxArgs || cmd[0] == "" {
		return bad("bad command")
	}
	for _, a := range cmd {
		if len(a) > maxArgLen || strings.ContainsRune(a, 0) {
			return bad("bad command argument")
		}
	}
	return nil
}

// target checks that exactly one of address and command is given and
// returns the canonical address ("" for a command).
func target(address string, command []string) (string, error) {
	switch {
	case address != "" && command != nil:
		return "", bad("both an address and a command")
	case command != nil:
		return "", checkCommand(command)
	}
	return ParseAddress(address)
}

// ErrFrame is wrapped by every refusal of a malformed frame.
var ErrFrame = errors.New("connector: bad frame")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFrame, fmt.Sprintf(format, args...))
}

// WriteFrame sends f as one frame.
func WriteFrame(w io.Writer, f *Frame) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if len(body) > MaxFrame {
		return bad("frame of %d bytes exceeds %d", len(body), MaxFrame)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame of the kinds in want and checks it. It never
// reads past the frame, so the stream's bytes after it are the pipe's.
func ReadFrame(r io.Reader, want ...string) (*Frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxFrame {
		return nil, bad("frame length %d outside 1..%d", n, MaxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return ParseFrame(body, want...)
}

// ParseFrame decodes and checks one frame body. Unknown fields, trailing
// data, a member given twice or in another case (encoding/json would
// match names case-insensitively and keep the last duplicate: two
// readings of one frame) and a kind not in want are refused.
func ParseFrame(body []byte, want ...string) (*Frame, error) {
	if err := strictMembers(body); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var f Frame
	if err := dec.Decode(&f); err != nil {
		return nil, bad("%v", err)
	}
	if dec.More() {
		return nil, bad("trailing data")
	}
	ok := false
	for _, k := range want {
		ok = ok || f.Kind == k
	}
	if !ok {
		return nil, bad("unexpected kind %q", f.Kind)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return &f, nil
}

// frameMembers and upstreamMembers are the JSON names of Frame and
// UpstreamInfo.
var (
	frameMembers    = []string{"kind", "name", "instance", "version", "upstreams", "token", "upstream", "address", "command", "ok", "error", "reauth_seconds"}
	upstreamMembers = []string{"name", "address", "command"}
)

// strictMembers refuses a frame whose objects (the frame, each announced
// upstream) repeat a member or spell one in another case, with
// mcpwire.Members: the one strict reading of JSON objects.
func strictMembers(body []byte) error {
	vals, err := mcpwire.Members(body, frameMembers...)
	if err != nil {
		return bad("%v", err)
	}
	ups := vals[4] // upstreams
	if len(ups) == 0 || bytes.Equal(bytes.TrimSpace(ups), []byte("null")) {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(ups, &list); err != nil {
		return bad("upstreams: %v", err)
	}
	for _, u := range list {
		if _, err := mcpwire.Members(u, upstreamMembers...); err != nil {
			return bad("upstreams: %v", err)
		}
	}
	return nil
}

// nameRE is a connector's or upstream's name (the config's server name
// rule); instanceRE an instance id.
var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	instanceRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
)

// ValidName reports whether s may name a connector or an upstream.
func ValidName(s string) bool { return nameRE.MatchString(s) }

func (f *Frame) check() error {
	switch f.Kind {
	case KindHello:
		if !nameRE.MatchString(f.Name) {
			return bad("hello: bad name")
		}
		if !instanceRE.MatchString(f.Instance) {
			return bad("hello: bad instance")
		}
		if len(f.Version) > maxText || !printable(f.Version) {
			return bad("hello: bad version")
		}
		if len(f.Upstreams) > MaxUpstreams {
			return bad("hello: more than %d upstreams", MaxUpstreams)
		}
		for i, u := range f.Upstreams {
			if !nameRE.MatchString(u.Name) {
				return bad("hello: bad upstream name")
			}
			a, err := target(u.Address, u.Command)
			if err != nil {
				return err
			}
			f.Upstreams[i].Address = a // one spelling, compared as is
		}
	case KindReauth:
		if f.Token == "" || len(f.Token) > MaxFrame-64 {
			return bad("reauth: bad token")
		}
	case KindOpen:
		if !nameRE.MatchString(f.Upstream) {
			return bad("open: bad upstream name")
		}
		a, err := target(f.Address, f.Command)
		if err != nil {
			return err
		}
		f.Address = a
	case KindResult, KindError, KindWelcome:
		if len(f.Error) > maxText*4 || !printable(f.Error) {
			return bad("%s: bad error text", f.Kind)
		}
		if f.ReauthSeconds < 0 {
			return bad("welcome: bad reauth_seconds")
		}
	}
	return nil
}

// ParseAddress checks a host:port the way both sides compare them: a
// literal host (name or IP) and a port 1..65535, nothing else.
func ParseAddress(a string) (string, error) {
	if len(a) == 0 || len(a) > maxText {
		return "", bad("bad address")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || !printable(host) {
		return "", bad("bad address %q", a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return "", bad("bad port in %q", a)
	}
	for _, r := range host {
		if r <= ' ' || r == '/' || r == '@' || r == '?' || r == '#' {
			return "", bad("bad host in %q", a)
		}
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil // DNS names are case-insensitive
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

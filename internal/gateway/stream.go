package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// stream is one logical SSE stream of a bridge session: the answer to one
// POST, or the standalone stream opened by GET. Events are kept so a client
// that lost its connection can resume with Last-Event-ID (MCP 2025-11-25
// transports §"Resumability and Redelivery").
type stream struct {
	id  string
	sse bool // false: the client takes one JSON body when every answer is in

	mu        sync.Mutex
	events    [][]byte // event i has sequence number i+1
	delivered int      // events written to some connection (standalone only)
	open      int      // answers still owed; the stream ends at zero
	done      bool
	wake      chan struct{} // closed and replaced whenever something changes

	// paramHeaders: the Mcp-Param-* headers of the 2026-07-28 request the
	// stream answers, forwarded with it to a native HTTP upstream.
	paramHeaders http.Header
}

// paramHeadersOf is the Mcp-Param-* headers of r (SEP-2243).
func paramHeadersOf(r *http.Request) http.Header {
	var h http.Header
	for k, vs := range r.Header {
		if strings.HasPrefix(k, mcpwire.ParamHeaderPrefix) {
			if h == nil {
				h = http.Header{}
			}
			h[k] = vs
		}
	}
	return h
}

func newStream(id string, sse bool, owed int) *stream {
	return &stream{id: id, sse: sse, open: owed, wake: make(chan struct{})}
}

// maxStreamEvents bounds what one stream keeps for replay.
const maxStreamEvents = 4096

func (st *stream) push(data []byte, isAnswer bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return
	}
	if len(st.events) < maxStreamEvents || isAnswer {
		st.events = append(st.events, data)
	}
	if isAnswer {
		st.open--
		if st.open <= 0 {
			st.done = true
		}
	}
	close(st.wake)
	st.wake = make(chan struct{})
}

// finish ends the stream whatever is still owed (session closed).
func (st *stream) finish() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.done {
		st.done = true
		close(st.wake)
		st.wake = make(chan struct{})
	}
}

// since returns the events after sequence number after, whether the stream
// has ended, and a channel closed on the next change.
func (st *stream) since(after int) (events [][]byte, next int, done bool, wake <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if after < len(st.events) {
		events = st.events[after:]
	}
	return events, len(st.events), st.done, st.wake
}

func (st *stream) isDone() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.done
}

// eventID names event seq of stream id; the priming event is seq 0.
func eventID(streamID string, seq int) string { return streamID + "_" + strconv.Itoa(seq) }

func parseEventID(s string) (streamID string, seq int, err error) {
	i := strings.LastIndexByte(s, '_')
	if i <= 0 {
		return "", 0, fmt.Errorf("bad event id %q", s)
	}
	seq, err = strconv.Atoi(s[i+1:])
	if err != nil || seq < 0 {
		return "", 0, fmt.Errorf("bad event id %q", s)
	}
	return s[:i], seq, nil
}

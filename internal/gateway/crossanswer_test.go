package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// TestAnswerOnlyFromItsUpstream: in an aggregated session, an answer
// completes a pending call only when it comes from the upstream the call
// went to. Gateway ids are sequential, so a malicious upstream could
// otherwise answer another upstream's calls (a tools/call, the gateway's
// own initialize or tools/list) with made-up results.
func TestAnswerOnlyFromItsUpstream(t *testing.T) {
	s := &session{pending: map[string]*call{}, byClient: map[string]string{}, progress: map[string]*stream{},
		ups: []*upConn{{idx: 0}, {idx: 1}}}
	for _, tc := range []struct {
		name   string
		from   int
		answer bool
	}{{"another upstream", 0, false}, {"its upstream", 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan *mcpwire.Message, 1)
			gid := s.register(&call{up: 1, internal: ch}, time.Minute)
			s.onUpstream(tc.from, mcpwire.Response(json.RawMessage(gid), json.RawMessage(`{"tools":[{"name":"forged"}]}`)), nil)
			select {
			case <-ch:
				if !tc.answer {
					t.Fatal("upstream 0 answered a call sent to upstream 1")
				}
			default:
				if tc.answer {
					t.Fatal("the call's own upstream could not answer it")
				}
				if s.take(gid) == nil {
					t.Fatal("the call is no longer pending")
				}
			}
		})
	}
}

package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

func TestUpstreamFailure(t *testing.T) {
	fr := &frontRequest{msgs: []*mcpwire.Message{{ID: []byte("1"), Method: "tools/call"}}}
	perRequest := func(code int) error {
		return answerEach(http.StatusOK, fr, func(m *mcpwire.Message) *mcpwire.Message { return mcpwire.ErrorResponse(m.ID, code, "x") })
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"whole POST unavailable", refuse(http.StatusBadGateway, mcpwire.CodeUpstreamUnavailable, "x"), "unavailable"},
		{"whole POST timeout", refuse(http.StatusGatewayTimeout, mcpwire.CodeUpstreamTimeout, "x"), "timeout"},
		{"per request, under 200", perRequest(mcpwire.CodeUpstreamUnavailable), "unavailable"},
		{"per request timeout", perRequest(mcpwire.CodeUpstreamTimeout), "timeout"},
		{"wrapped", fmt.Errorf("engine: %w", refuse(http.StatusBadGateway, mcpwire.CodeUpstreamUnavailable, "x")), "unavailable"},
		{"the gateway's own refusal", refuse(http.StatusServiceUnavailable, mcpwire.CodeInvalidRequest, "full"), ""},
		{"per request, other code", perRequest(mcpwire.CodeInvalidParams), ""},
		{"not an rpcError", errors.New("boom"), ""},
	}
	for _, tt := range tests {
		if got := upstreamFailure(tt.err); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Look-alikes. The scope check judges a message by its method and by the
// name or URI it touches, compared exactly (MCP method and tool names are
// case-sensitive). An upstream that routes leniently — methods folded to
// lower case, names trimmed, C strings cut at NUL — would run for
// "Tools/call" or "admin_tool\u0000" what the check took for something
// else: an unknown method (not checked at all) or a name a catch-all
// rule lets through. No client needs such spellings, so they are refused
// before the scope check:
//   - a method that is not one the gateway interprets but equals one
//     after trimming spaces and folding case ("Tools/call", "tools/call "),
//     and the same for a completion reference type ("ref/Prompt");
//   - a name or URI with control characters (NUL included) anywhere, or
//     with white space at either end.

// interpretedMethods are the methods whose target the gateway reads.
var interpretedMethods = []string{
	"initialize", "tools/call", "prompts/get", "resources/read", "resources/subscribe",
	"resources/unsubscribe", "completion/complete", "tools/list", "prompts/list", "resources/list",
}

// lookalike reports whether s is not one of exact but equals one of them
// once trimmed and case-folded.
func lookalike(s string, exact ...string) bool {
	t := strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	for _, e := range exact {
		if s == e {
			return false
		}
	}
	for _, e := range exact {
		if strings.EqualFold(t, e) {
			return true
		}
	}
	return false
}

// badTarget says what is wrong with a name or URI, or "".
func badTarget(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "contains a control character"
	}
	if t := strings.TrimSpace(s); t != s {
		return "has white space at an end"
	}
	return ""
}

// checkLookalikes refuses the look-alikes described above; the refusal
// is logged with who sent it (probing).
func checkLookalikes(fr *frontRequest) error {
	for _, m := range fr.msgs {
		if err := lookalikeIn(m); err != nil {
			return err.answering(m.ID).because(fmt.Errorf("%s", err.Message))
		}
	}
	return nil
}

func lookalikeIn(m *mcpwire.Message) *rpcError {
	if lookalike(m.Method, interpretedMethods...) {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidRequest, fmt.Sprintf("method %q is not an MCP method", m.Method))
	}
	if m.Method == "completion/complete" && lookalike(m.Ref.Type, "ref/prompt", "ref/resource") {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, fmt.Sprintf("reference type %q is not an MCP reference type", m.Ref.Type))
	}
	kind, name := callTarget(m)
	if m.Method == "resources/unsubscribe" {
		kind, name = "resource", m.URI
	}
	if why := badTarget(name); kind != "" && why != "" {
		return refuse(http.StatusBadRequest, mcpwire.CodeInvalidParams, fmt.Sprintf("the %s named %s", kind, why))
	}
	return nil
}

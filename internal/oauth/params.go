package oauth

import (
	"net/url"
	"slices"
	"sort"
)

// RepeatedParameter returns the name of a parameter that appears more
// than once in v, or "" when each appears at most once. RFC 6749 §3.1
// (and OAuth 2.1 §3.1): "Request and response parameters MUST NOT be
// included more than once." Go's url.Values keeps every copy and Get
// picks the first, while another reader (a proxy, a WAF, a second
// handler reading the last) may pick another: refusing the request is
// the only reading every party agrees on. The check covers every name,
// not only those the endpoint knows, so no parameter can be smuggled
// past the endpoint that reads it. The result is the smallest repeated
// name, so the error message is deterministic. Names in multi are left
// to the endpoint: RFC 8707 §2 and RFC 8693 §2.1 let resource and
// audience repeat, and the endpoint refuses more than one with
// invalid_target, the code those specs give.
func RepeatedParameter(v url.Values, multi ...string) string {
	var repeated []string
	for name, values := range v {
		if len(values) > 1 && !slices.Contains(multi, name) {
			repeated = append(repeated, name)
		}
	}
	if len(repeated) == 0 {
		return ""
	}
	sort.Strings(repeated)
	return repeated[0]
}

// SingleValued is RepeatedParameter as the invalid_request error an
// endpoint answers, or nil.
func SingleValued(v url.Values, multi ...string) *Error {
	if name := RepeatedParameter(v, multi...); name != "" {
		return Errorf(InvalidRequest, "parameter %q must not be included more than once (RFC 6749 §3.1)", name)
	}
	return nil
}

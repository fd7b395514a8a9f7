package authflow

import (
	"net/url"
	"strings"
	"testing"
)

func TestLocalReturn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/connections", "/connections"},
		{"/connections#calendar-api", "/connections#calendar-api"},
		{"/connections?x=1", "/connections?x=1"},
		{"/a/b/../c", "/a/c"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"}, // encoded slashes stay a path
		// Everything below would leave the origin in a browser, or is not a plain path.
		{"", DefaultReturn},
		{"//evil.example", DefaultReturn},
		{"///evil.example", DefaultReturn},
		{"/\\evil.example", DefaultReturn},
		{"\\\\evil.example", DefaultReturn},
		{"/\t/evil.example", DefaultReturn},
		{"/\n/evil.example", DefaultReturn},
		{"/\r/evil.example", DefaultReturn},
		{"\t//evil.example", DefaultReturn},
		{" //evil.example", DefaultReturn},
		{"/%09/evil.example", "/%09/evil.example"}, // still encoded: a path on our origin
		{"https:evil.example", DefaultReturn},
		{"https://evil.example/", DefaultReturn},
		{"http:/evil.example", DefaultReturn},
		{"javascript:alert(1)", DefaultReturn},
		{"evil.example", DefaultReturn},
		{"/.//evil.example", DefaultReturn}, // resolves to "//evil.example"
		{"/./\\evil.example", DefaultReturn},
		{"/\x00/evil.example", DefaultReturn},
		{"/\x7f", DefaultReturn},
		{"/\u00a0/evil", DefaultReturn},
		{"/" + strings.Repeat("a", 3000), DefaultReturn},
		{"/%5C%5Cevil.example", "/%5C%5Cevil.example"}, // encoded backslashes stay a path
		{"%2F%2Fevil.example", DefaultReturn},          // not a path
		{"/ /evil.example", DefaultReturn},
		{"/　/evil.example", DefaultReturn},
		{"/／/evil.example", DefaultReturn},     // fullwidth solidus
		{"/..//evil.example", "/evil.example"}, // dot segments resolved: a path here
		{"/a/../../..//evil.example", "/evil.example"},
		{"/?//evil.example", "/?//evil.example"}, // a query, on our origin
		{"/#//evil.example", "/#//evil.example"},
		{"/@evil.example", "/@evil.example"},
		{"/connections%0d%0aSet-Cookie:x", "/connections%0d%0aSet-Cookie:x"}, // stays encoded
		{"/connections\r\nSet-Cookie: x", DefaultReturn},
	} {
		if got := LocalReturn(tc.in); got != tc.want {
			t.Errorf("LocalReturn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// browserResolve resolves ref against base the way a browser's URL parser
// (WHATWG URL) does for an http(s) base, as far as the origin goes: strip
// leading and trailing C0 controls and spaces, remove every tab and
// newline, read backslashes as slashes, then resolve.
func browserResolve(base *url.URL, ref string) (*url.URL, error) {
	ref = strings.TrimFunc(ref, func(r rune) bool { return r <= ' ' })
	ref = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(ref)
	u, err := url.Parse(ref)
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(u), nil
}

// FuzzLocalReturn checks the property: whatever LocalReturn returns,
// resolving it against our origin the way a browser does stays on our
// origin, and it is a path (one leading slash) a second call keeps as is.
func FuzzLocalReturn(f *testing.F) {
	for _, s := range []string{"/connections", "//evil", "/\\evil", "/\t/evil", "/%09/evil", "https:evil", "/.//evil",
		"/a/../..//evil", "/?next=//evil", "/#//evil", "/%2F%2Fevil", "/;@evil", "/@evil", "/:evil"} {
		f.Add(s)
	}
	base := &url.URL{Scheme: "https", Host: "gw.example", Path: "/"}
	f.Fuzz(func(t *testing.T, in string) {
		out := LocalReturn(in)
		abs, err := browserResolve(base, out)
		if err != nil {
			t.Fatalf("LocalReturn(%q) = %q, which does not parse: %v", in, out, err)
		}
		if abs.Scheme != base.Scheme || abs.Host != base.Host || abs.User != nil {
			t.Fatalf("LocalReturn(%q) = %q resolves to %s", in, out, abs)
		}
		if !strings.HasPrefix(out, "/") || LocalReturn(out) != out {
			t.Fatalf("LocalReturn(%q) = %q is not a stable local path", in, out)
		}
	})
}

package gateway

import (
	"net/url"
	"path"
	"slices"
	"strings"
)

// Resource URIs have more than one spelling. Rules match a URI as
// written ("file:///secret/*"), but an upstream may read
// "FILE:///secret/x", "file:///%73ecret/x", "file:///pub/../secret/x",
// "file:////secret/x" or "file://localhost/secret/x" as that same
// resource: RFC 3986 §6.2.2 makes scheme and host case, percent-encoding
// of unreserved characters and dot segments no part of a URI's identity,
// and file servers commonly decode the whole path and clean it. Since a
// resource no rule matches needs no scope, a rule checked against the
// written form alone is bypassed by any of these spellings.
//
// The gateway therefore checks a resource against every reading of its
// URI (uriReadings) and requires the scopes of all of them: the bytes
// forwarded stay as sent, and whichever reading the upstream makes, the
// token was checked for it (fail closed: a reading that needs more only
// adds a requirement).

// maxDecodes bounds repeated percent-decoding ("%2573" → "%73" → "s"):
// an upstream that decodes twice is rare, three times rarer still.
const maxDecodes = 3

// uriReadings returns uri and its normalised reading, without repeats.
func uriReadings(uri string) []string {
	out := []string{uri}
	if n := normalizeURI(uri); !slices.Contains(out, n) {
		out = append(out, n)
	}
	return out
}

// normalizeURI reads uri as a lenient upstream would: percent-encoding
// decoded (repeatedly, bounded), scheme and authority in lower case,
// "localhost" dropped from file URIs, and the path cleaned of dot
// segments and repeated slashes.
func normalizeURI(uri string) string {
	s := uri
	for range maxDecodes {
		d, err := url.PathUnescape(s)
		if err != nil || d == s {
			break
		}
		s = d
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/?#") {
		return cleanPath(s)
	}
	scheme = strings.ToLower(scheme)
	authority := ""
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		end := strings.IndexAny(after, "/?#")
		if end < 0 {
			end = len(after)
		}
		authority, rest = strings.ToLower(after[:end]), after[end:]
		// "b+file:" is the file URI of an aggregated upstream "b".
		if (scheme == "file" || strings.HasSuffix(scheme, "+file")) && authority == "localhost" {
			authority = ""
		}
		authority = "//" + authority
	}
	return scheme + ":" + authority + cleanPath(rest)
}

// cleanPath removes dot segments and repeated slashes from the path part
// of p (before any "?" or "#"), keeping a trailing slash.
func cleanPath(p string) string {
	end := strings.IndexAny(p, "?#")
	if end < 0 {
		end = len(p)
	}
	pth, tail := p[:end], p[end:]
	if pth == "" {
		return p
	}
	c := path.Clean(pth)
	if strings.HasSuffix(pth, "/") && c != "/" {
		c += "/"
	}
	if c == "." {
		c = ""
	}
	return c + tail
}

package config

import (
	"fmt"
	"sort"
	"strings"
)

// prefixesApart refuses prefixes of one aggregated server that make two
// tools one name. The gateway exposes tool "x" of prefix "a" as "a__x";
// with prefixes "a" and "a__b", tool "b__x" of the first and tool "x" of
// the second are both "a__b__x", so the list shows one name twice, a
// call runs whichever the router picks, and the audit line cannot say
// which. Prefixes that differ only in case are refused too: clients and
// people read "A__x" and "a__x" as one tool.
func (v *validator) prefixesApart(p string, prefixes map[string]int) {
	names := make([]string, 0, len(prefixes))
	for pr := range prefixes {
		names = append(names, pr)
	}
	sort.Strings(names)
	for _, a := range names {
		for _, b := range names {
			at := fmt.Sprintf("%s.upstreams[%d].prefix", p, prefixes[b])
			switch {
			case a == b:
			case strings.HasPrefix(strings.ToLower(b), strings.ToLower(a)+"__"):
				v.add(at, "prefix %q begins with prefix %q and \"__\" (upstreams[%d]): their tools could share a name", b, a, prefixes[a])
			case strings.EqualFold(a, b) && a < b:
				v.add(at, "prefix %q differs from prefix %q (upstreams[%d]) only in case", b, a, prefixes[a])
			}
		}
	}
}

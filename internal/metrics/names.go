package metrics

import (
	"strings"

	"github.com/mcpgate/mcpgate/internal/config"
)

// Names are the tool, resource and prompt names the configuration knows,
// per server: its `tools:` rules. A name a client sends becomes a label
// only when a rule names it exactly, or as the rule's pattern when a
// glob rule matches it; anything else is Other. A client choosing names
// can therefore create at most (rules + 1) series per server, kind,
// outcome and status class.
type Names struct {
	servers map[string]map[string]*kindNames // server → kind → names
}

type kindNames struct {
	exact map[string]bool
	globs []string // in rule order
}

// NamesFrom collects the names of cfg's servers' tool rules.
func NamesFrom(cfg *config.Config) *Names {
	n := &Names{servers: map[string]map[string]*kindNames{}}
	for _, s := range cfg.Servers {
		for _, r := range s.Tools {
			kind := r.Kind
			if kind == "" {
				kind = "tool"
			}
			n.add(s.Name, kind, r.Match)
		}
	}
	return n
}

func (n *Names) add(server, kind, match string) {
	if match == "" {
		return
	}
	kinds := n.servers[server]
	if kinds == nil {
		kinds = map[string]*kindNames{}
		n.servers[server] = kinds
	}
	k := kinds[kind]
	if k == nil {
		k = &kindNames{exact: map[string]bool{}}
		kinds[kind] = k
	}
	if strings.Contains(match, "*") {
		k.globs = append(k.globs, match)
	} else {
		k.exact[match] = true
	}
}

// Label is the label of name, of kind, on server: name itself when a rule
// names it, the first matching glob rule's pattern, else Other.
func (n *Names) Label(server, kind, name string) string {
	if n == nil {
		return Other
	}
	k := n.servers[server][kind]
	if k == nil {
		return Other
	}
	if k.exact[name] {
		return name
	}
	for _, g := range k.globs {
		if globMatch(g, name) {
			return g
		}
	}
	return Other
}

// globMatch reports whether name matches pattern, each "*" matching any
// run of characters (possibly empty) and nothing else special: the
// meaning of `tools:` match patterns (internal/policy). Linear in the
// lengths, whatever the name.
func globMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return len(name) >= len(last) && strings.HasSuffix(name, last)
}

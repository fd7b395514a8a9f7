package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// position is where a value was written in the source file.
type position struct{ line, col int }

// source remembers where each decoded value came from so that Validate can
// point at it. Paths are the same as in Problem.Path.
type source struct {
	file string
	pos  map[string]position // every decoded node, by path
	bad  map[string]bool     // paths whose value could not be decoded
}

// maxNodes bounds the work done on one document, including nodes reached
// again through aliases (a "billion laughs" document stops here).
const maxNodes = 200_000

type decoder struct {
	src      *source
	lookup   func(string) (string, bool)
	problems Problems
	visited  int
	syntax   bool // the YAML could not be parsed
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	return &decoder{
		src:    &source{file: file, pos: map[string]position{}, bad: map[string]bool{}},
		lookup: lookup,
	}
}

func (d *decoder) addAt(line, col int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{
		File: d.src.file, Line: line, Column: col, Path: path,
		Message: fmt.Sprintf(format, args...),
	})
}

func (d *decoder) add(n *yaml.Node, path, format string, args ...any) {
	d.addAt(n.Line, n.Column, path, format, args...)
}

// fail records a problem with the value at path and marks it as not decoded,
// so that validation does not pile consequential problems on top of it.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.src.bad[path] = true
	d.add(n, path, format, args...)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into the root node of its single YAML document.
// It returns nil (and no problem) for an empty document.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(err)
		}
		return nil
	}
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.syntaxError(err)
			break
		}
		if len(extra.Content) > 0 && extra.Content[0].ShortTag() != "!!null" {
			d.add(&extra, "", "only one YAML document is allowed")
			break
		}
		// An empty document, e.g. after a trailing "---", is harmless.
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// incomplete reports whether the document could not be read in full (a
// syntax error, or too large); validating what was read would only add
// noise.
func (d *decoder) incomplete() bool { return d.syntax || d.visited >= maxNodes }

func (d *decoder) syntaxError(err error) {
	d.syntax = true
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.addAt(line, 0, "", "invalid YAML: %s", msg)
}

var durationType = reflect.TypeFor[Duration]()

// decode walks n against the Go value v (a field of Config or below),
// reporting every mismatch instead of stopping at the first one.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	d.visited++
	if d.visited == maxNodes {
		d.add(n, path, "document is too large or expands too many aliases")
	}
	if d.visited >= maxNodes {
		return
	}
	d.src.pos[path] = position{n.Line, n.Column}
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // same as not written
	}

	t := v.Type()
	if t == durationType {
		s, ok := d.scalar(n, path, "a duration such as 30s or 5m")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		switch {
		case err != nil:
			d.fail(n, path, "invalid duration %q: use a number with a unit, such as 30s, 5m or 1h", s)
		case dur <= 0:
			d.fail(n, path, "must be greater than 0")
		default:
			v.SetInt(int64(dur))
		}
		return
	}

	switch t.Kind() {
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64:
		d.integer(n, path, v)
	case reflect.Bool:
		s, expanded, ok := d.expandScalar(n, path, "true or false")
		if !ok {
			return
		}
		// Strict: YAML 1.1's yes/no/on/off are not booleans here.
		if !expanded && n.ShortTag() != "!!bool" {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(n, path, "expected true or false, got %q", s)
		}
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decode(n, path, p.Elem())
		if !d.src.bad[path] {
			v.Set(p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if t.Elem().Kind() == reflect.Struct && resolveAlias(item).ShortTag() == "!!null" {
				d.src.pos[ip] = position{item.Line, item.Column}
				d.fail(item, ip, "expected a mapping, got null")
				continue
			}
			d.decode(item, ip, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(t)
		for _, e := range d.entries(n, path) {
			val := reflect.New(t.Elem()).Elem()
			d.decode(e.value, e.path, val)
			m.SetMapIndex(reflect.ValueOf(e.key), val)
		}
		v.Set(m)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		for _, e := range d.entries(n, path) {
			idx, ok := fields[e.key]
			if !ok {
				d.add(e.keyNode, e.path, "unknown key %q%s", e.key, suggest(e.key, fields))
				continue
			}
			d.decode(e.value, e.path, v.Field(idx))
		}
	default:
		panic("config: unsupported field type " + t.String())
	}
}

// scalar returns the ${VAR}-expanded text of a scalar node.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	s, _, ok := d.expandScalar(n, path, want)
	return s, ok
}

func (d *decoder) expandScalar(n *yaml.Node, path, want string) (s string, expanded, ok bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", want, describe(n))
		return "", false, false
	}
	s, expanded, errs := expandEnv(n.Value, d.lookup)
	if len(errs) > 0 {
		d.src.bad[path] = true
		for _, e := range errs {
			d.add(n, path, "%s", e)
		}
		return "", false, false
	}
	return s, expanded, true
}

func (d *decoder) integer(n *yaml.Node, path string, v reflect.Value) {
	s, expanded, ok := d.expandScalar(n, path, "an integer")
	if !ok {
		return
	}
	// A quoted "123" is a string in YAML; a value coming from ${VAR} has no
	// YAML type of its own and is read as if written plainly.
	if !expanded && n.ShortTag() != "!!int" {
		d.fail(n, path, "expected an integer, got %s", describe(n))
		return
	}
	var i int64
	plain := yaml.Node{Kind: yaml.ScalarNode, Value: strings.TrimSpace(s)}
	if err := plain.Decode(&i); err != nil || v.OverflowInt(i) {
		d.fail(n, path, "expected an integer, got %q", s)
		return
	}
	v.SetInt(i)
}

// entry is one key/value pair of a mapping, after YAML merge keys ("<<")
// have been applied.
type entry struct {
	key     string
	keyNode *yaml.Node
	value   *yaml.Node
	path    string
}

// entries lists the pairs of mapping n, reporting duplicate and non-string
// keys. Keys are never ${VAR}-expanded.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var out []entry
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(n.Content[i], path, "mapping keys must be plain strings, got %s", describe(k))
			continue
		}
		p := keyPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.add(n.Content[i], p, "duplicate key %q (first set at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = n.Content[i]
		out = append(out, entry{key: k.Value, keyNode: n.Content[i], value: val, path: p})
	}
	// Explicit keys win over merged ones; earlier merges win over later ones.
	for _, m := range merges {
		m = resolveAlias(m)
		var sources []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{m}
		case yaml.SequenceNode:
			for _, s := range m.Content {
				sources = append(sources, resolveAlias(s))
			}
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				d.add(s, path, "merge (<<) needs a mapping or a list of mappings, got %s", describe(s))
				continue
			}
			d.visited++
			if d.visited >= maxNodes {
				return out
			}
			for _, e := range d.entries(s, path) {
				if _, dup := seen[e.key]; !dup {
					seen[e.key] = e.keyNode
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath appends a mapping key to a path: "a.b", or a["x.y"] for keys that
// are not plain words.
func keyPath(parent, key string) string {
	if !plainKeyRE.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// parentPath is the inverse of keyPath and of appending "[i]".
func parentPath(p string) string {
	switch {
	case strings.HasSuffix(p, `"]`):
		if i := strings.LastIndex(p, `["`); i >= 0 {
			return p[:i]
		}
	case strings.HasSuffix(p, "]"):
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// yamlFields maps the yaml tag names of struct type t to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	return fields
}

// describe names the YAML type of n for messages; it never prints the value,
// which may be a secret.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a " + strings.TrimPrefix(n.ShortTag(), "!!") + " value"
}

// suggest returns ` (did you mean "x"?)` for a near-miss of a known key.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for name := range fields {
		dist := editDistance(strings.ToLower(key), name)
		if dist < bestDist || (dist == bestDist && best != "" && name < best) {
			best, bestDist = name, dist
		}
	}
	if best == "" || bestDist > len(key)/2 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

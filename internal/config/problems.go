package config

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration, located in the source file.
// Line and Column are 1-based; they are 0 when the configuration was not
// read from a file (for example, built in code and checked with Validate).
type Problem struct {
	File    string
	Line    int
	Column  int
	Path    string // e.g. "servers[1].upstream.url"; empty for file-level problems
	Message string
}

// String formats the problem as "file:line:col: path: message", leaving out
// the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(":")
	}
	if p.Line > 0 {
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(":")
		if p.Column > 0 {
			b.WriteString(strconv.Itoa(p.Column))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a configuration. It is the error
// returned by Parse, Load and Validate.
type Problems []Problem

// Error prints one problem per line.
func (ps Problems) Error() string {
	if len(ps) == 0 {
		return "no configuration problems"
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sorted orders problems by position, then path, dropping exact duplicates
// (the same node can be reached twice through YAML aliases).
func (ps Problems) sorted() Problems {
	out := append(Problems(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Path < b.Path
	})
	seen := make(map[Problem]bool, len(out))
	n := 0
	for _, p := range out {
		if seen[p] {
			continue
		}
		seen[p] = true
		out[n] = p
		n++
	}
	return out[:n]
}

package registration

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzUniqueMembers checks the property metadata parsing relies on: when
// uniqueMembers accepts a JSON object, decoding it into a map loses no
// member, so every reader sees the same members (no copy was dropped by
// last-wins decoding). Top-level members are counted with a token scan.
func FuzzUniqueMembers(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"x":1},{"x":2}]}`,
		`{"a":1,"A":2}`, `{"a\u0062":1,"ab":2}`, `[{"a":1,"a":1}]`, `{"a":null,"a":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		err := uniqueMembers(data)
		var m map[string]json.RawMessage
		if err != nil || json.Unmarshal(data, &m) != nil {
			return
		}
		if n := topLevelMembers(data); n != len(m) {
			t.Fatalf("accepted %s: %d members, the map kept %d", data, n, len(m))
		}
	})
}

// topLevelMembers counts the members of the object data is.
func topLevelMembers(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return -1
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil { // name
			return -1
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return -1
		}
		n++
	}
	return n
}

package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// errRepeatedMember marks uniqueMembers' refusal.
var errRepeatedMember = errors.New("every member name must be unique (RFC 7493 §2.3)")

// uniqueMembers reports the first member name repeated within one JSON
// object of data, at any depth. encoding/json keeps the last copy of a
// repeated member, while other readers of the same bytes (the stored
// metadata shown to an operator, a client library, a cache in front)
// may keep the first: {"redirect_uris":[good],"redirect_uris":[evil]}
// would be two documents in one. RFC 8259 §4 says names SHOULD be unique
// and RFC 7493 (I-JSON) §2.3 says MUST; metadata is refused unless each
// object has one reading. Names compare exactly, as the decoder matches
// them (RFC 8259 §8.3). data must already be valid JSON.
func uniqueMembers(data []byte) error {
	type frame struct {
		object  bool
		wantKey bool
		names   map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object {
			if top.wantKey {
				name, _ := tok.(string)
				if top.names[name] {
					return fmt.Errorf("member %q appears more than once in one object: %w", name, errRepeatedMember)
				}
				top.names[name] = true
				top.wantKey = false
				continue
			}
			top.wantKey = true // the value is read; a name comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true, names: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		}
	}
}

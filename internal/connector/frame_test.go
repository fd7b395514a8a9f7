package connector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

func frameBytes(body string) []byte {
	b := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(b, uint32(len(body)))
	copy(b[4:], body)
	return b
}

func TestReadFrame(t *testing.T) {
	long := `{"kind":"hello","name":"edge","instance":"i1","version":"` + strings.Repeat("v", MaxFrame) + `"}`
	tests := []struct {
		name string
		in   []byte
		want []string
		ok   bool
	}{
		{"hello", frameBytes(`{"kind":"hello","name":"edge","instance":"i1","version":"1","upstreams":[{"name":"m","address":"10.0.0.5:9000"}]}`), []string{KindHello}, true},
		{"open", frameBytes(`{"kind":"open","upstream":"metrics","address":"[::1]:8080"}`), []string{KindOpen}, true},
		{"unexpected kind", frameBytes(`{"kind":"open","upstream":"metrics","address":"a:1"}`), []string{KindHello}, false},
		{"unknown field", frameBytes(`{"kind":"open","upstream":"m","address":"a:1","url":"http://x"}`), []string{KindOpen}, false},
		{"trailing data", frameBytes(`{"kind":"open","upstream":"m","address":"a:1"}{}`), []string{KindOpen}, false},
		{"zero length", frameBytes(``), []string{KindOpen}, false},
		{"too long", long4(MaxFrame + 1), []string{KindHello}, false},
		{"long version", frameBytes(long), []string{KindHello}, false},
		{"address with path", frameBytes(`{"kind":"open","upstream":"m","address":"a:1/x"}`), []string{KindOpen}, false},
		{"address without port", frameBytes(`{"kind":"open","upstream":"m","address":"10.0.0.5"}`), []string{KindOpen}, false},
		{"port zero", frameBytes(`{"kind":"open","upstream":"m","address":"a:0"}`), []string{KindOpen}, false},
		{"port padded", frameBytes(`{"kind":"open","upstream":"m","address":"a:080"}`), []string{KindOpen}, false},
		{"userinfo", frameBytes(`{"kind":"open","upstream":"m","address":"u@a:80"}`), []string{KindOpen}, false},
		{"bad name", frameBytes(`{"kind":"open","upstream":"../x","address":"a:80"}`), []string{KindOpen}, false},
		{"hello bad instance", frameBytes(`{"kind":"hello","name":"edge","instance":"a b"}`), []string{KindHello}, false},
		{"control char in error", frameBytes(`{"kind":"result","error":"a\u0000b"}`), []string{KindResult}, false},
		{"open a command", frameBytes(`{"kind":"open","upstream":"tools","command":["srv","--stdio"]}`), []string{KindOpen}, true},
		{"address and command", frameBytes(`{"kind":"open","upstream":"tools","address":"a:1","command":["srv"]}`), []string{KindOpen}, false},
		{"empty command", frameBytes(`{"kind":"open","upstream":"tools","command":[]}`), []string{KindOpen}, false},
		{"empty program", frameBytes(`{"kind":"open","upstream":"tools","command":[""]}`), []string{KindOpen}, false},
		{"NUL in an argument", frameBytes(`{"kind":"open","upstream":"tools","command":["srv","a\u0000b"]}`), []string{KindOpen}, false},
		{"hello with a command", frameBytes(`{"kind":"hello","name":"edge","instance":"i1","upstreams":[{"name":"t","command":["srv"]}]}`), []string{KindHello}, true},
		{"mixed-case host", frameBytes(`{"kind":"open","upstream":"m","address":"Metrics.Internal:9000"}`), []string{KindOpen}, true},
		{"truncated", frameBytes(`{"kind":"open"`)[:6], []string{KindOpen}, false},
		// One reading: encoding/json alone would take the last duplicate
		// and match names case-insensitively.
		{"duplicate address", frameBytes(`{"kind":"open","upstream":"m","address":"a:1","address":"b:2"}`), []string{KindOpen}, false},
		{"case-variant address", frameBytes(`{"kind":"open","upstream":"m","Address":"a:1"}`), []string{KindOpen}, false},
		{"case-variant kind", frameBytes(`{"KIND":"open","upstream":"m","address":"a:1"}`), []string{KindOpen}, false},
		{"duplicate kind", frameBytes(`{"kind":"hello","kind":"open","upstream":"m","address":"a:1"}`), []string{KindOpen}, false},
		{"duplicate in an upstream", frameBytes(`{"kind":"hello","name":"edge","instance":"i1","upstreams":[{"name":"m","address":"a:1","address":"b:2"}]}`), []string{KindHello}, false},
		{"case variant in an upstream", frameBytes(`{"kind":"hello","name":"edge","instance":"i1","upstreams":[{"Name":"m","address":"a:1"}]}`), []string{KindHello}, false},
		{"null upstreams", frameBytes(`{"kind":"hello","name":"edge","instance":"i1","upstreams":null}`), []string{KindHello}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in), tt.want...)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// long4 is a length header announcing n bytes (none follow).
func long4(n int) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(n))
	return b
}

func TestWriteFrameRefusesOversize(t *testing.T) {
	var buf bytes.Buffer
	err := WriteFrame(&buf, &Frame{Kind: KindReauth, Token: strings.Repeat("t", MaxFrame)})
	if !errors.Is(err, ErrFrame) || buf.Len() != 0 {
		t.Fatalf("err = %v, wrote %d bytes", err, buf.Len())
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := &Frame{Kind: KindHello, Name: "edge", Instance: "host-1", Version: "v1.2", Upstreams: []UpstreamInfo{{Name: "metrics", Address: "10.0.0.5:9000"}}}
	if err := WriteFrame(&buf, in); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("rest")
	out, err := ReadFrame(&buf, KindHello)
	if err != nil || out.Name != "edge" || out.Upstreams[0].Address != "10.0.0.5:9000" {
		t.Fatalf("%+v %v", out, err)
	}
	if buf.String() != "rest" {
		t.Fatalf("ReadFrame read past the frame: %q left", buf.String())
	}
}

// FuzzFrames: any bytes give a checked frame or an error, never a panic,
// and an accepted frame re-encodes to one that parses the same way.
func FuzzFrames(f *testing.F) {
	f.Add(frameBytes(`{"kind":"hello","name":"edge","instance":"i1","version":"1","upstreams":[{"name":"m","address":"10.0.0.5:9000"}]}`))
	f.Add(frameBytes(`{"kind":"open","upstream":"metrics","address":"[::1]:8080"}`))
	f.Add(frameBytes(`{"kind":"result","ok":true}`))
	f.Add(frameBytes(`{"kind":"reauth","token":"abc"}`))
	f.Add(frameBytes(`{"kind":"open","upstream":"tools","command":["srv","--stdio"]}`))
	f.Add(frameBytes(`{"kind":"welcome","ok":true,"reauth_seconds":60}`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(frameBytes(`{"kind":"open","upstream":"m","address":"a:1","Address":"b:2"}`))
	f.Add(frameBytes(`{"kind":"hello","name":"edge","instance":"i1","upstreams":[{"name":"m","name":"n","address":"a:1"}]}`))
	all := []string{KindHello, KindWelcome, KindReauth, KindOpen, KindResult, KindError}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := ReadFrame(bytes.NewReader(in), all...)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, fr); err != nil {
			t.Fatalf("accepted frame does not re-encode: %v", err)
		}
		again, err := ReadFrame(&buf, fr.Kind)
		if err != nil || again.Kind != fr.Kind || again.Address != fr.Address || again.Name != fr.Name || !slices.Equal(again.Command, fr.Command) {
			t.Fatalf("re-encoded frame reads differently: %+v %v", again, err)
		}
		if fr.Kind == KindOpen && fr.Command == nil {
			if a, err := ParseAddress(fr.Address); err != nil || a != fr.Address {
				t.Fatalf("open address %q is not canonical (%q, %v)", fr.Address, a, err)
			}
		}
	})
}

package mcpwire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParseBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		n       int
		batch   bool
		wantErr error
		kind    string // request|notification|response
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, 1, false, nil, "request"},
		{"string id", `{"jsonrpc":"2.0","id":"a","method":"ping"}`, 1, false, nil, "request"},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 1, false, nil, "notification"},
		{"response", `{"jsonrpc":"2.0","id":1,"result":{}}`, 1, false, nil, "response"},
		{"error response null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}`, 1, false, nil, "response"},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"x"}]`, 2, true, nil, "request"},
		{"whitespace", " \n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n", 1, false, nil, "request"},
		{"malformed", `{"jsonrpc":"2.0",`, 0, false, ErrParse, ""},
		{"empty", ``, 0, false, ErrParse, ""},
		{"empty batch", `[]`, 0, true, ErrInvalidMessage, ""},
		{"no version", `{"id":1,"method":"ping"}`, 0, false, ErrInvalidMessage, ""},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, 0, false, ErrInvalidMessage, ""},
		{"method and result", `{"jsonrpc":"2.0","id":1,"method":"a","result":{}}`, 0, false, ErrInvalidMessage, ""},
		{"nothing", `{"jsonrpc":"2.0","id":1}`, 0, false, ErrInvalidMessage, ""},
		{"wrong type", `{"jsonrpc":"2.0","id":1,"method":5}`, 0, false, ErrInvalidMessage, ""},
		{"bad batch member", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"x":1}]`, 0, true, ErrInvalidMessage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, batch, err := ParseBody([]byte(tc.body))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(msgs) != tc.n || batch != tc.batch {
				t.Fatalf("got %d msgs batch=%v err=%v", len(msgs), batch, err)
			}
			m := msgs[0]
			got := map[bool]string{m.IsRequest(): "request", m.IsNotification(): "notification", m.IsResponse(): "response"}[true]
			if got != tc.kind {
				t.Errorf("kind = %q, want %q", got, tc.kind)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	m := Request([]byte(`"x"`), "tools/call", []byte(`{"name":"a"}`))
	back, err := ParseMessage(m.Encode())
	if err != nil || back.Method != "tools/call" || string(back.ID) != `"x"` || string(back.Params) != `{"name":"a"}` {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	e := ErrorResponse(nil, CodeParseError, "bad")
	if got := string(e.Encode()); got != `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}` {
		t.Errorf("error encoding = %s", got)
	}
}

func TestEventReader(t *testing.T) {
	stream := ": comment\n\n" +
		"event: prime\nid: s_0\nretry: 500\ndata: \n\n" +
		"id: s_1\ndata: {\"a\":1}\n\n" +
		"data: line1\r\ndata: line2\r\n\r\n" +
		"id: s_3\ndata: {\"cut\":"
	r := NewEventReader(strings.NewReader(stream))
	ev, err := r.Next()
	if err != nil || ev.ID != "s_0" || ev.Retry != 500 || ev.Name != "prime" || len(ev.Data) != 0 {
		t.Fatalf("priming event = %+v %v", ev, err)
	}
	ev, err = r.Next()
	if err != nil || ev.ID != "s_1" || string(ev.Data) != `{"a":1}` {
		t.Fatalf("event = %+v %v", ev, err)
	}
	ev, err = r.Next()
	if err != nil || string(ev.Data) != "line1\nline2" || ev.HasID {
		t.Fatalf("multi-line event = %+v %v", ev, err)
	}
	if _, err = r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated event: err = %v, want ErrUnexpectedEOF", err)
	}
}

func TestEventReaderLimit(t *testing.T) {
	big := "data: " + strings.Repeat("x", MaxEventSize+10) + "\n\n"
	if _, err := NewEventReader(strings.NewReader(big)).Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrEventTooLarge", err)
	}
}

func TestWriteEventRoundTrip(t *testing.T) {
	for _, ev := range []Event{
		{ID: "a_1", HasID: true, Data: []byte(`{"x":"y"}`)},
		{ID: "a_0", HasID: true, Retry: 1000},
		{Name: "message", Data: []byte("two\nlines")},
	} {
		var buf bytes.Buffer
		if err := WriteEvent(&buf, ev); err != nil {
			t.Fatal(err)
		}
		got, err := NewEventReader(&buf).Next()
		if err != nil || got.ID != ev.ID || got.Retry != ev.Retry || got.Name != ev.Name || !bytes.Equal(got.Data, ev.Data) {
			t.Errorf("round trip of %+v = %+v, %v", ev, got, err)
		}
	}
}

func TestVersions(t *testing.T) {
	for _, v := range []string{"2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"} {
		if !IsSupportedVersion(v) {
			t.Errorf("%s not supported", v)
		}
	}
	for _, v := range []string{"2024-11-05", "", "2099-01-01"} {
		if IsSupportedVersion(v) {
			t.Errorf("%q supported", v)
		}
	}
}

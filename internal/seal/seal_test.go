package seal

import (
	"strings"
	"testing"
	"time"
)

func TestSealOpen(t *testing.T) {
	b, err := New([]byte("a shared secret of enough length!!"), "test")
	if err != nil {
		t.Fatal(err)
	}
	type payload struct{ User string }
	s, err := b.Seal(payload{"alice"}, time.Minute, "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "alice") {
		t.Fatal("sealed value is readable")
	}
	var got payload
	if err := b.Open(s, "ctx", &got); err != nil || got.User != "alice" {
		t.Fatalf("open = %+v, %v", got, err)
	}
	other, _ := New([]byte("a shared secret of enough length!!"), "other purpose")
	later := b.WithClock(func() time.Time { return time.Now().Add(2 * time.Minute) })
	for _, tc := range []struct {
		name string
		box  *Box
		s    string
		ctx  string
	}{
		{"wrong context", b, s, "ctx2"},
		{"other purpose", other, s, "ctx"},
		{"expired", later, s, "ctx"},
		{"tampered", b, s[:len(s)-3] + "AAA", "ctx"},
		{"garbage", b, "%%%", "ctx"},
		{"short", b, "AAAA", "ctx"},
	} {
		if err := tc.box.Open(tc.s, tc.ctx, &got); err != ErrInvalid {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
}

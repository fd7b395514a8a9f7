package seal

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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

// FuzzSeal checks the properties of sealed state: Open never panics on
// any input; what Seal made opens to the same value with the same
// context (text: valid UTF-8); the same string with any one character changed, truncated,
// extended, expired, opened with another context or by a box of another
// purpose is refused with ErrInvalid.
func FuzzSeal(f *testing.F) {
	f.Add("alice", "ctx", uint(0), byte(1), uint(0), "")
	f.Add("", "", uint(7), byte(0x80), uint(3), "garbage")
	f.Add(`{"u":"x"}`, "tenant-a", uint(1000), byte(0xff), uint(1), "AAAA")
	secret := []byte("a shared secret of enough length!!")
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	b, _ := New(secret, "purpose")
	b = b.WithClock(clock)
	other, _ := New(secret, "another purpose")
	other = other.WithClock(clock)
	later := b.WithClock(func() time.Time { return now.Add(2 * time.Minute) })
	f.Fuzz(func(t *testing.T, value, context string, pos uint, delta byte, cut uint, junk string) {
		type payload struct{ V string }
		var got payload
		if err := b.Open(junk, context, &got); err == nil {
			t.Fatalf("Open(%q) of an arbitrary string succeeded", junk)
		}
		s, err := b.Seal(payload{value}, time.Minute, context)
		if err != nil {
			t.Fatal(err)
		}
		// (JSON carries text: invalid UTF-8 comes back as U+FFFD.)
		if err := b.Open(s, context, &got); err != nil || (utf8.ValidString(value) && got.V != value) {
			t.Fatalf("round trip: %+v, %v", got, err)
		}
		refused := func(what string, box *Box, s, ctx string) {
			t.Helper()
			if err := box.Open(s, ctx, &got); err != ErrInvalid {
				t.Fatalf("%s: err = %v, want ErrInvalid", what, err)
			}
		}
		if delta != 0 {
			i := int(pos % uint(len(s)))
			c := []byte(s)
			c[i] = alphabet[(strings.IndexByte(alphabet, c[i])+int(delta))%len(alphabet)]
			if string(c) != s {
				refused("one character changed", b, string(c), context)
			}
		}
		refused("truncated", b, s[:int(cut%uint(len(s)))], context)
		refused("extended", b, s+"A", context)
		refused("expired", later, s, context)
		refused("another purpose", other, s, context)
		refused("another context", b, s, context+"x")
	})
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

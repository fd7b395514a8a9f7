package vault

import (
	"errors"
	"testing"
)

// A key that claims another key's ID is still refused: the ID only picks
// the key, GCM decides.
func TestForgedKeyID(t *testing.T) {
	k1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := Key{ID: k1.ID, secret: k2.secret}
	v1, err := New(k1)
	if err != nil {
		t.Fatal(err)
	}
	vf, err := New(forged)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _, err := v1.Seal([]byte("secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vf.Open(sealed, []byte("aad")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open with a key forging the ID: %v, want ErrDecrypt", err)
	}
	if _, err := New(Key{ID: "zz", secret: k1.secret}); err == nil {
		t.Error("New with a malformed key ID: no error")
	}
}

// The check value's constants are what the tests outside assume.
func TestCheckConstants(t *testing.T) {
	if string(checkPlain) != "mcpgate vault check value v1" || string(checkAAD) != "mcpgate vault v1: check" {
		t.Error("check value constants changed: update store_test.go's overwritingStore")
	}
}

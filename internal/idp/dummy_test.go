package idp

import "testing"

// TestCostliestHash: the dummy copies the costliest bcrypt hash, else the
// first argon2id one, else nothing (the directory's default).
func TestCostliestHash(t *testing.T) {
	const (
		b4     = "$2a$04$abcdefghijklmnopqrstuu5jxEXt5MR9ihDiQFajkYMS0ci8Kbt0K"
		b10    = "$2a$10$abcdefghijklmnopqrstuu5jxEXt5MR9ihDiQFajkYMS0ci8Kbt0K"
		argonA = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"
		argonB = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"
	)
	tests := []struct {
		name   string
		hashes []string
		want   string
	}{
		{"none", nil, ""},
		{"empty hashes", []string{"", ""}, ""},
		{"costliest bcrypt", []string{b4, b10, b4}, b10},
		{"first of equal cost", []string{b10, b10 + "x"}, b10},
		{"bcrypt over argon2id", []string{argonA, b4}, b4},
		{"first argon2id", []string{"", argonB, argonA}, argonB},
	}
	for _, tt := range tests {
		if got := CostliestHash(tt.hashes...); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

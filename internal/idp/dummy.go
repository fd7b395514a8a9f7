package idp

import "golang.org/x/crypto/bcrypt"

// CostliestHash picks, of the given password hashes (typically the
// declared users'), the one that costs the most to check, for
// DirectoryOptions.DummyLike: an unknown username then costs at least what
// a known user's wrong password does from the first attempt. bcrypt hashes
// compare by cost; without any, the first other non-empty hash (argon2id:
// the dummy copies its parameters) is taken; "" when there is none.
func CostliestHash(hashes ...string) string {
	best, bestCost := "", -1
	for _, h := range hashes {
		cost, err := bcrypt.Cost([]byte(h))
		if err != nil {
			if best == "" && h != "" {
				best = h
			}
			continue
		}
		if cost > bestCost {
			best, bestCost = h, cost
		}
	}
	return best
}

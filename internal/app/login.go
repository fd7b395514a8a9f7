package app

import (
	"github.com/mcpgate/mcpgate/internal/config"
	"golang.org/x/crypto/bcrypt"
)

// dummyLike picks the configured user hash that costs the most to check,
// for the directory's dummy comparison: an unknown username then costs
// at least what a configured user's wrong password does.
func dummyLike(cfg *config.Config) string {
	best, bestCost := "", -1
	for _, u := range cfg.Users {
		cost, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			if best == "" && u.PasswordHash != "" {
				best = u.PasswordHash // argon2id: its parameters are copied
			}
			continue
		}
		if cost > bestCost {
			best, bestCost = u.PasswordHash, cost
		}
	}
	return best
}

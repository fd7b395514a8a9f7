package authflow

import "crypto/rand"

func randomSecret() string { return rand.Text() }

package connector

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started: sessions, streams, agents' loops.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

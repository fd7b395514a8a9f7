package store

import (
	"context"
	"time"
)

// ClientActivity is the optional capability of a Store that lets clients
// registered by strangers (kind ClientDynamic) expire when unused, so that
// anonymous registration cannot fill the store forever (issue 8, finding
// 9). A deleted client gets invalid_client and registers again.
type ClientActivity interface {
	// TouchClient records that client id completed a grant at at (zero:
	// now); an earlier at than the one recorded changes nothing.
	TouchClient(ctx context.Context, id string, at time.Time) error
	// DeleteStaleClients deletes the dynamic clients that never completed
	// a grant and were created before unusedBefore, and those last used
	// before idleBefore (a zero time disables that rule), with their
	// activity, and counts them. Other kinds are never deleted.
	DeleteStaleClients(ctx context.Context, unusedBefore, idleBefore time.Time) (int, error)
}

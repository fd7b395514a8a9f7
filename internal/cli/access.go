package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/layered"
)

// admin is what the user and grant commands act through: the store, the
// config's users over it, and the access state (so a cut-off is stored
// for every replica, the same way a running server makes it).
type admin struct {
	base    store.Store
	users   *layered.Store
	access  *access.Checker
	refresh time.Duration
}

func openAdmin(fs *flag.FlagSet, args []string, stderr io.Writer) (*admin, int) {
	st, cfg, code := openStore(fs, args, stderr)
	if st == nil {
		return nil, code
	}
	users, ac, err := app.OpenAccess(context.Background(), cfg, st)
	if err != nil {
		_ = st.Close()
		return nil, failed(stderr, err)
	}
	return &admin{base: st, users: users, access: ac, refresh: cfg.OAuth.RevocationRefresh.Std()}, ExitOK
}

func (a *admin) close() { _ = a.base.Close() }

// within says how soon running servers apply a change.
func (a *admin) within() string { return "within " + a.refresh.String() }

// errNoUser: nobody matches what the operator typed.
var errNoUser = errors.New("no such user")

// findUser finds a user by id (subject), username or e-mail (users who
// sign in through their company have no username), in the config and the
// store. Several users sharing an e-mail address is an error naming them.
func (a *admin) findUser(ctx context.Context, ref string) (store.User, error) {
	if u, err := a.users.GetUser(ctx, ref); err == nil {
		return u, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if u, err := a.users.GetUserByUsername(ctx, ref); err == nil {
		return u, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	all, err := a.users.ListUsers(ctx)
	if err != nil {
		return store.User{}, err
	}
	var found []store.User
	for _, u := range all {
		if u.Email != "" && strings.EqualFold(u.Email, ref) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return store.User{}, fmt.Errorf("%w: %q is no user's id, username or e-mail", errNoUser, ref)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, u := range found {
		ids[i] = u.ID
	}
	return store.User{}, fmt.Errorf("%d users have the e-mail %q (%s): name one by id", len(found), ref, strings.Join(ids, ", "))
}

// revokeGrants revokes a user's grants to a client ("" = every client):
// refresh tokens, remembered consent, and — through the access state
// every replica reads — the access tokens already issued.
func (a *admin) revokeGrants(ctx context.Context, user, client string) (int, error) {
	n, err := a.base.RevokeRefreshTokens(ctx, user, client, time.Now())
	if err != nil {
		return n, err
	}
	if err := a.access.RevokeUser(ctx, user, client); err != nil {
		return n, err
	}
	consents, err := a.base.ListConsents(ctx, user)
	if err != nil {
		return n, err
	}
	for _, c := range consents {
		if client == "" || c.ClientID == client {
			if err := a.base.DeleteConsent(ctx, c.UserID, c.ClientID); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

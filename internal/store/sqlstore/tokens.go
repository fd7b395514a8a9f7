package sqlstore

import (
	"context"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Authorization codes
// ---------------------------------------------------------------------------

var authCodeCols = []string{"code_hash", "client_id", "user_id", "redirect_uri", "code_challenge",
	"resource", "scope", "grant_id", "created_at", "expires_at", "used_at"}

var (
	selectAuthCode = selectSQL("auth_codes", authCodeCols)
	insertAuthCode = insertSQL("auth_codes", authCodeCols)
)

func scanAuthCode(sc scanner) (store.AuthCode, error) {
	var c store.AuthCode
	err := sc.Scan(&c.CodeHash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.CodeChallenge,
		&c.Resource, &c.Scope, &c.GrantID, tsCol{&c.CreatedAt}, tsCol{&c.ExpiresAt}, tsCol{&c.UsedAt})
	return c, err
}

const authCodeWhat = "authorization code"

// CreateAuthCode stores a new authorization code.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	_, err := exec(ctx, s.write(), authCodeWhat, insertAuthCode,
		c.CodeHash, c.ClientID, c.UserID, c.RedirectURI, c.CodeChallenge,
		c.Resource, c.Scope, c.GrantID, ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.UsedAt))
	return err
}

// ConsumeAuthCode marks a code used and returns it; see store.Store.
func (s *Store) ConsumeAuthCode(ctx context.Context, codeHash string, at time.Time) (store.AuthCode, error) {
	at = now(at)
	var c store.AuthCode
	var result error
	err := s.tx(ctx, func(tx db) error {
		var err error
		result = nil
		c, err = getOne(ctx, tx, scanAuthCode, authCodeWhat, selectAuthCode+" WHERE code_hash = ?"+s.d.LockRow, codeHash)
		if err != nil {
			return err
		}
		switch {
		case !c.UsedAt.IsZero():
			result = s.d.wrap(authCodeWhat, store.ErrAlreadyUsed)
			return nil
		case expired(c.ExpiresAt, at):
			result = s.d.wrap(authCodeWhat, store.ErrExpired)
			return nil
		}
		if _, err := exec(ctx, tx, authCodeWhat, "UPDATE auth_codes SET used_at = ? WHERE code_hash = ?", ts(at), codeHash); err != nil {
			return err
		}
		c.UsedAt = at
		return nil
	})
	if err != nil {
		return store.AuthCode{}, err
	}
	return c, result
}

// ---------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------

var refreshCols = []string{"token_hash", "family_id", "client_id", "user_id", "resource", "scope",
	"created_at", "expires_at", "rotated_at", "revoked_at"}

var (
	selectRefresh = selectSQL("refresh_tokens", refreshCols)
	insertRefresh = insertSQL("refresh_tokens", refreshCols)
)

func refreshArgs(t store.RefreshToken) []any {
	return []any{t.TokenHash, t.FamilyID, t.ClientID, t.UserID, t.Resource, t.Scope,
		ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.RotatedAt), ts(t.RevokedAt)}
}

func scanRefresh(sc scanner) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := sc.Scan(&t.TokenHash, &t.FamilyID, &t.ClientID, &t.UserID, &t.Resource, &t.Scope,
		tsCol{&t.CreatedAt}, tsCol{&t.ExpiresAt}, tsCol{&t.RotatedAt}, tsCol{&t.RevokedAt})
	return t, err
}

const refreshWhat = "refresh token"

// CreateRefreshToken stores a new refresh token (the first of a family).
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if t.FamilyID == "" {
		return s.d.errorf("refresh token without a family")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	_, err := exec(ctx, s.write(), refreshWhat, insertRefresh, refreshArgs(t)...)
	return err
}

// GetRefreshToken returns a refresh token whatever its state.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string) (store.RefreshToken, error) {
	return getOne(ctx, s.read(), scanRefresh, refreshWhat, selectRefresh+" WHERE token_hash = ?", tokenHash)
}

// RotateRefreshToken replaces oldHash by next; see store.Store. It returns
// the record of oldHash as it is after the call.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, at time.Time) (store.RefreshToken, error) {
	at = now(at)
	var old store.RefreshToken
	var result error
	err := s.tx(ctx, func(tx db) error {
		var err error
		result = nil
		old, err = getOne(ctx, tx, scanRefresh, refreshWhat, selectRefresh+" WHERE token_hash = ?"+s.d.LockRow, oldHash)
		if err != nil {
			return err
		}
		switch {
		case !old.RevokedAt.IsZero():
			result = s.d.wrap(refreshWhat, store.ErrRevoked)
			return nil
		case !old.RotatedAt.IsZero():
			// Reuse: the whole family goes (committed, with the error).
			if _, err := exec(ctx, tx, refreshWhat,
				"UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
				ts(at), old.FamilyID); err != nil {
				return err
			}
			old.RevokedAt = at
			result = s.d.wrap(refreshWhat, store.ErrAlreadyUsed)
			return nil
		case expired(old.ExpiresAt, at):
			result = s.d.wrap(refreshWhat, store.ErrExpired)
			return nil
		}
		n := next
		if n.FamilyID == "" {
			n.FamilyID = old.FamilyID
		} else if n.FamilyID != old.FamilyID {
			return s.d.errorf("next refresh token is in family %q, the rotated one in %q", n.FamilyID, old.FamilyID)
		}
		if n.CreatedAt.IsZero() {
			n.CreatedAt = at
		}
		if _, err := exec(ctx, tx, refreshWhat, "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?", ts(at), oldHash); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, "next "+refreshWhat, insertRefresh, refreshArgs(n)...); err != nil {
			return err
		}
		old.RotatedAt = at
		return nil
	})
	if err != nil {
		return store.RefreshToken{}, err
	}
	return old, result
}

// RevokeRefreshFamily revokes every token of a family not revoked yet.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) error {
	_, err := exec(ctx, s.write(), "revoke refresh family",
		"UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL", ts(now(at)), familyID)
	return err
}

// RevokeRefreshTokens revokes a user's tokens for a client ("" = every
// client) not revoked yet, and counts them.
func (s *Store) RevokeRefreshTokens(ctx context.Context, userID, clientID string, at time.Time) (int, error) {
	q := "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
	args := []any{ts(now(at)), userID}
	if clientID != "" {
		q += " AND client_id = ?"
		args = append(args, clientID)
	}
	return count(ctx, s.write(), "revoke refresh tokens", q, args...)
}

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

// DeleteExpired removes the authorization codes and refresh tokens whose
// ExpiresAt is at or before now.
func (s *Store) DeleteExpired(ctx context.Context, at time.Time) (int, error) {
	cut := ts(now(at))
	total := 0
	err := s.tx(ctx, func(tx db) error {
		total = 0
		for _, table := range []string{"auth_codes", "refresh_tokens"} {
			n, err := count(ctx, tx, "delete expired", "DELETE FROM "+table+" WHERE expires_at <= ?", cut)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

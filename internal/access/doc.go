// Package access owns "is this cut off": revoked access tokens (RFC 7009),
// revoked grants (a replayed authorization code, a revoked refresh token,
// OAuth 2.1 §4.1.3 and §4.3.1), users an admin disabled, grant revocations
// (user, client, issued before), clients and users the config no longer
// declares, and the private_key_jwt assertions already presented (RFC 7523
// §3). It is the one predicate the gateway, token exchange, introspection,
// refresh and the vault's hand-out all ask (Checker.Check).
//
// State lives in the store (store.AccessEntry, store.GrantRevocation), so
// it survives restarts and every replica shares it. Each process keeps a
// snapshot in memory that Check reads without touching the store (the
// gateway's hot path): changes made through a Checker apply to its own
// snapshot at once, and Run re-reads the store on a bounded interval so
// other replicas' changes apply within that interval.
//
// Next door: internal/store/layered serves the config's users and clients
// over the store (and asks Checker.Disabled); internal/grants and
// internal/gateway call Check; internal/cli writes through a Checker.
package access

// Package registration is how OAuth clients become known to mcpgate's
// authorization server, in the two ways the MCP authorization
// specification (2025-11-25) offers besides static configuration:
//
//   - Dynamic Client Registration (RFC 7591): Handler serves
//     POST /register, validates the client's metadata, issues a client_id
//     (and, for confidential clients, a client_secret whose SHA-256 alone
//     is stored) and saves a store.Client of kind store.ClientDynamic.
//     Options.Policy decides who may register: anyone with allowlisted
//     redirect URIs (the default), anyone at all, or holders of an initial
//     access token.
//   - Client ID Metadata Documents
//     (draft-ietf-oauth-client-id-metadata-document): the client_id is an
//     https URL and Resolver fetches the JSON document there, checks it,
//     and caches the resulting store.Client of kind store.ClientMetadata.
//     The fetch is an attacker-triggered outbound request, so it goes
//     through package safefetch (addresses checked at connect time, so
//     SSRF and DNS-rebinding safe; https only; bounded in time and size;
//     cached), and never follows redirects.
//
// Neither kind of client is registered by an operator, so neither may
// declare client_credentials (or keys for anything but private_key_jwt):
// such metadata is refused with invalid_client_metadata (issue 8,
// finding 2); grants enforces the same rule at the token endpoint.
//
// Both check redirect URIs with the same rules (see Allowlist): absolute,
// no fragment, no userinfo, no dot segments or encoded separators, https
// unless loopback (RFC 8252 §7.3) or a private-use scheme (RFC 8252 §7.1),
// and never javascript:, data: or file:.
//
// Section numbers of the metadata document draft ("draft §N") are those
// of revision -01: §3 client identifier, §4 discovery (200 only, no
// redirects), §4.1 document contents, §4.4 caching. Revision -02
// renumbers them; the rules are unchanged.
package registration

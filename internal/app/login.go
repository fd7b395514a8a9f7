package app

import (
	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/idp"
)

// dummyLike is the declared users' costliest hash, which the directory's
// dummy comparison copies (idp.CostliestHash).
func dummyLike(cat *catalog.Catalog) string {
	var hashes []string
	for _, u := range cat.Users() {
		hashes = append(hashes, u.PasswordHash)
	}
	return idp.CostliestHash(hashes...)
}

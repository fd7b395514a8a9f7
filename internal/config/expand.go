package config

import (
	"fmt"
	"regexp"
	"strings"
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${VAR} and ${VAR:-default} in s using lookup.
//
// Only the braced forms are recognised, so a lone "$" or "$VAR" is kept as
// written (bcrypt hashes such as "$2a$10$..." survive untouched). "$${" is
// an escape for a literal "${". Substituted values and defaults are not
// expanded again. ${VAR:-default} uses default when VAR is unset or empty.
//
// expanded reports whether at least one substitution happened; errs lists
// every malformed reference and every undefined variable without default.
func expandEnv(s string, lookup func(string) (string, bool)) (out string, expanded bool, errs []string) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			errs = append(errs, `unterminated "${" (write "$${" for a literal "${")`)
			b.WriteString(s[i:])
			break
		}
		ref := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDef := strings.Cut(ref, ":-")
		if !envNameRE.MatchString(name) {
			errs = append(errs, fmt.Sprintf("invalid variable reference ${%s}: names are letters, digits and _ (not starting with a digit); use ${NAME} or ${NAME:-default}", ref))
			continue
		}
		val, ok := lookup(name)
		switch {
		case hasDef && val == "":
			val = def
		case !ok:
			errs = append(errs, fmt.Sprintf("environment variable %s is not set (use ${%s:-default} to give a default)", name, name))
			continue
		}
		b.WriteString(val)
		expanded = true
	}
	return b.String(), expanded, errs
}

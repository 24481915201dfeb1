package subject

import "strings"

// notInToken are the characters a token must not contain: the token
// separator, the wildcards and whitespace (which NATS does not allow in a
// subject).
const notInToken = ". *>\t\r\n"

// Token reports whether s can be one literal subject token: not empty, and
// free of '.', the wildcards '*' and '>', spaces, tabs and line breaks.
func Token(s string) bool {
	return s != "" && !strings.ContainsAny(s, notInToken)
}

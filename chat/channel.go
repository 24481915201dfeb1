package chat

import (
	"fmt"
	"strings"
)

// SafeChannelURL maps a recipient to a channel_url that Sendbird accepts
// when it creates a channel: only letters, digits and underscores, 4 to 100
// characters. bankbook's recipients ("store:st_1") have a colon, which the
// channel-creation API refuses, so against the real service set
// SendbirdConfig.ChannelURL to SafeChannelURL (the simulator accepts any
// channel_url, and API.md names channels by recipient, the default).
//
// The mapping is one-to-one: "bb_" followed by the recipient with ASCII
// letters and digits kept, "_" doubled, and every other byte written as "_"
// and two upper-case hex digits ("store:st_1" → "bb_store_3Ast__1"). A
// recipient whose mapping would pass 100 characters is an error matching
// ErrInvalidMessage.
func SafeChannelURL(recipient string) (string, error) {
	if recipient == "" {
		return "", fmt.Errorf("%w: empty recipient", ErrInvalidMessage)
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString("bb_")
	for i := 0; i < len(recipient); i++ {
		c := recipient[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			b.WriteByte(c)
		case c == '_':
			b.WriteString("__")
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
	}
	if b.Len() > 100 {
		return "", fmt.Errorf("%w: recipient %q makes a channel_url of %d characters (at most 100)", ErrInvalidMessage, recipient, b.Len())
	}
	return b.String(), nil
}

// sameChannel is the default channel mapping: the recipient itself.
func sameChannel(recipient string) (string, error) { return recipient, nil }

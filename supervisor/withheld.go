package supervisor

import "strings"

// Withholder is an error that carries a third party's own words (the start
// of a provider's answer: an error page, a message that may name an account
// holder or echo a request), which its Error includes for the logs.
// WithheldText returns those words.
type Withholder interface {
	error
	WithheldText() string
}

// withheld replaces a Withholder's words in a part's status.
const withheld = "[the provider's answer: see the log]"

// Text is err's message as a part's status shows it (LastError, and so
// /readyz, which answers without authentication): the words of every
// Withholder in err's tree are replaced by a mark, so that nothing a third
// party wrote reaches it. The logs keep the whole message.
func Text(err error) string {
	msg := err.Error()
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if w, ok := e.(Withholder); ok {
			if t := w.WithheldText(); t != "" {
				msg = strings.ReplaceAll(msg, t, withheld)
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return msg
}

package auth

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// ErrCredentials means the NATS credentials given cannot be used together
// or read.
var ErrCredentials = errors.New("auth: credentials")

// Credentials is how a process authenticates to NATS: at most one of a
// .creds file (JWT), an NKey seed file, or a user with a password file,
// plus optional TLS files. Secrets come only from files: nothing here is a
// secret itself, so it can be logged and appear in `ps`.
type Credentials struct {
	Creds        string `json:"nats_creds"`
	NKey         string `json:"nats_nkey"`
	User         string `json:"nats_user"`
	PasswordFile string `json:"nats_password_file"`
	CA           string `json:"nats_ca"`
	Cert         string `json:"nats_cert"`
	Key          string `json:"nats_key"`
}

// Empty reports whether no way to authenticate is given.
func (c Credentials) Empty() bool { return c.Creds == "" && c.NKey == "" && c.User == "" }

// Check reports credentials that cannot be used together, without reading
// any file.
func (c Credentials) Check() error {
	n := 0
	for _, s := range []string{c.Creds, c.NKey, c.User} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w: give one of a creds file, an nkey seed file, or a user with a password file", ErrCredentials)
	}
	if (c.User == "") != (c.PasswordFile == "") {
		return fmt.Errorf("%w: a user needs a password file, and a password file a user", ErrCredentials)
	}
	if (c.Cert == "") != (c.Key == "") {
		return fmt.Errorf("%w: a client certificate needs its key, and a key its certificate", ErrCredentials)
	}
	return nil
}

// Options returns the nats.go options that authenticate with c.
func (c Credentials) Options() ([]nats.Option, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case c.Creds != "":
		if _, err := os.Stat(c.Creds); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCredentials, err)
		}
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.NKey != "":
		if _, err := ReadSeed(c.NKey); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCredentials, err)
		}
		o, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, c.NKey, err)
		}
		opts = append(opts, o)
	case c.User != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%w: password file: %v", ErrCredentials, err)
		}
		opts = append(opts, nats.UserInfo(c.User, strings.TrimRight(string(b), "\r\n")))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	if c.Cert != "" {
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	return opts, nil
}

// CheckURL refuses a NATS URL (or comma-separated list) that carries a
// password or token: it would show in `ps`, logs and errors. Use a password
// file or an NKey instead. seedFlag is the caller's flag for an NKey seed
// file ("nkey" for client commands, "nats-nkey" for serve), which the error
// names.
func CheckURL(urls, seedFlag string) error {
	for _, s := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%w: a NATS URL does not parse", ErrCredentials)
		}
		if u.User != nil {
			return fmt.Errorf("%w: the NATS URL %s carries credentials; give them with --%s, --nats-creds or --nats-user and --nats-password-file", ErrCredentials, Redact(s), seedFlag)
		}
	}
	return nil
}

// Redact returns url without any user information, for logs and errors.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, s := range parts {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/nats-io/nkeys"
)

// Identity is one user who may connect: its name (the actor recorded on
// what it does), its role, and exactly one credential: an NKey public key or
// a bcrypt password hash.
type Identity struct {
	Name     string `json:"name"`
	Role     Role   `json:"role"`
	NKey     string `json:"nkey,omitempty"`
	Password string `json:"password_bcrypt,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// reserved are the actors the engine records for its own work: no user may
// take one, or its actions would read as the engine's.
var reserved = map[string]bool{"engine": true, "timer": true, "reactor": true, "scanner": true, "webhook": true}

// Validate checks the name, the role and the credential.
func (id Identity) Validate() error {
	if !nameRE.MatchString(id.Name) {
		return fmt.Errorf("%w: name %q: 1-32 characters a-z, 0-9, '_' or '-', starting with a letter", ErrInvalidUser, id.Name)
	}
	if reserved[id.Name] && !(id.Name == string(Engine) && id.Role == Engine) {
		return fmt.Errorf("%w: name %q is what the engine records for its own work", ErrInvalidUser, id.Name)
	}
	if !id.Role.Valid() {
		return fmt.Errorf("%w: %s: role %q is not one of app, feed, operator, auditor, engine", ErrInvalidUser, id.Name, id.Role)
	}
	switch {
	case id.NKey != "" && id.Password != "":
		return fmt.Errorf("%w: %s: give an nkey or a password_bcrypt, not both", ErrInvalidUser, id.Name)
	case id.NKey != "":
		if !nkeys.IsValidPublicUserKey(id.NKey) {
			return fmt.Errorf("%w: %s: nkey must be a public user key (U...)", ErrInvalidUser, id.Name)
		}
	case id.Password != "":
		if !strings.HasPrefix(id.Password, "$2a$") && !strings.HasPrefix(id.Password, "$2b$") && !strings.HasPrefix(id.Password, "$2y$") {
			return fmt.Errorf("%w: %s: password_bcrypt must be a bcrypt hash ($2a$...), never a plain password", ErrInvalidUser, id.Name)
		}
	default:
		return fmt.Errorf("%w: %s: an nkey or a password_bcrypt is required", ErrInvalidUser, id.Name)
	}
	return nil
}

// SeedFile is where the generated seed of role lives under dir.
func SeedFile(dir string, r Role) string { return filepath.Join(dir, string(r)+".nk") }

// Ensure makes sure dir holds one seed per role, creating the missing ones
// (mode 0600) and reusing the others, and returns the identities, named
// after their roles.
func Ensure(dir string) ([]Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSeedFile, err)
	}
	var ids []Identity
	for _, r := range Roles {
		path := SeedFile(dir, r)
		kp, err := ReadSeed(path)
		if errors.Is(err, fs.ErrNotExist) {
			kp, err = createSeed(path)
		}
		if err != nil {
			return nil, err
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrSeedFile, path, err)
		}
		ids = append(ids, Identity{Name: string(r), Role: r, NKey: pub})
	}
	return ids, nil
}

func createSeed(path string) (nkeys.KeyPair, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSeedFile, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSeedFile, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSeedFile, err)
	}
	_, err = f.Write(append(seed, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("%w: %v", ErrSeedFile, err)
	}
	return kp, nil
}

// ReadSeed reads a user seed file. A file that others than its owner can
// read is refused: a seed is a password.
func ReadSeed(path string) (nkeys.KeyPair, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by others (mode %v); chmod 600 it", ErrSeedFile, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSeedFile, err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not hold a user seed", ErrSeedFile, path)
	}
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("%w: %s does not hold a user seed", ErrSeedFile, path)
	}
	return kp, nil
}

// authFile is --auth-file's format.
type authFile struct {
	Users []Identity `json:"users"`
}

// LoadFile reads the operator's own users: a JSON object
// {"users":[{"name":...,"role":...,"nkey":"U..."|"password_bcrypt":"$2a$..."}]}.
// Unknown fields, invalid users and repeated names are refused.
func LoadFile(path string) ([]Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthFile, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f authFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrAuthFile, path, err)
	}
	if len(f.Users) == 0 {
		return nil, fmt.Errorf("%w: %s: no users", ErrAuthFile, path)
	}
	seen := map[string]bool{}
	for _, id := range f.Users {
		if err := id.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrAuthFile, path, err)
		}
		if seen[id.Name] {
			return nil, fmt.Errorf("%w: %s: user %q appears twice", ErrAuthFile, path, id.Name)
		}
		seen[id.Name] = true
	}
	return f.Users, nil
}

// Identities is who may connect to an engine's embedded server: the
// generated identities in dir or, with authFile, the operator's users plus
// the generated engine identity (the engine always connects with its own).
func Identities(dir, authFile string) ([]Identity, error) {
	generated, err := Ensure(dir)
	if err != nil {
		return nil, err
	}
	if authFile == "" {
		return generated, nil
	}
	users, err := LoadFile(authFile)
	if err != nil {
		return nil, err
	}
	for _, g := range generated {
		if g.Role != Engine {
			continue
		}
		for _, u := range users {
			if u.Name == g.Name {
				return nil, fmt.Errorf("%w: %s: the name %q is the generated engine identity's", ErrAuthFile, authFile, g.Name)
			}
		}
		users = append(users, g)
	}
	return users, nil
}

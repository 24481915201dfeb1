package auth

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EngineAccount is the name of the account that owns JetStream and serves
// the API (prefixed with the tenant's name on a shared deployment).
const EngineAccount = "ENGINE"

// Tenant is one business's bankbook on a NATS deployment: its identities and
// what its engine offers. Tenants on one deployment share nothing: each has
// its own engine account, so its own streams and buckets.
type Tenant struct {
	// Name is "" for a deployment that serves one business; otherwise 1-16
	// characters a-z, 0-9, starting with a letter, prefixed with "_" to every
	// account name of the tenant.
	Name string
	// Users are the tenant's identities, engine identities included.
	Users []Identity
	// Simulators grants the simulator subjects (development and tests).
	Simulators bool
	// Stream is the event stream's name (DefaultStream when "").
	Stream string
	// MaxConnections is how many connections each identity other than the
	// engine's may hold at once (the account's limit, which the NATS
	// server enforces); 0 sets none. One identity's connections, a leak
	// or a flood, then cannot take every connection the server allows.
	MaxConnections int
	// MaxStore is how many bytes of JetStream file storage the tenant's
	// engine account may hold, its streams and buckets together (the
	// account's JetStream limit, which the NATS server enforces); 0 sets
	// none. On a shared deployment one tenant's growth, or a flood of its
	// commands, then cannot fill the storage the other tenants write to.
	MaxStore int64
	// MaxEngineConnections is how many connections the engine account may
	// hold at once; 0 sets none.
	MaxEngineConnections int
}

var tenantRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// Account names the account of identity name in tenant; engine identities
// share the tenant's engine account.
func Account(tenant string, id Identity) string {
	name := id.Name
	if id.Role == Engine {
		name = EngineAccount
	}
	if tenant == "" {
		return name
	}
	return tenant + "_" + name
}

// TenantOfEngineAccount returns the tenant whose engine account (Account of
// an engine identity) account is: "" for EngineAccount, "acme" for
// "acme_ENGINE"; ok is false for an account that is no tenant's engine
// account.
func TenantOfEngineAccount(account string) (tenant string, ok bool) {
	if account == EngineAccount {
		return "", true
	}
	tenant, ok = strings.CutSuffix(account, "_"+EngineAccount)
	if !ok || !tenantRE.MatchString(tenant) {
		return "", false
	}
	return tenant, true
}

// Render returns the accounts block of a nats-server configuration for the
// tenants: what the embedded server runs and what `bankbook auth config`
// prints for an external cluster.
func Render(tenants ...Tenant) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# bankbook identities and permissions (docs/security.md).\n")
	b.WriteString("# Generated: regenerate with `bankbook auth config` rather than editing.\n")
	b.WriteString("accounts {\n")
	seenTenant := map[string]bool{}
	// nats-server keeps one table of user names and one of NKeys for all
	// its accounts: it refuses to start with a name or a key given twice,
	// even in two tenants' accounts.
	creds := map[string]string{}
	for _, t := range tenants {
		for _, id := range t.Users {
			cred, what := "nkey "+id.NKey, "the key of"
			if id.NKey == "" {
				cred, what = "user "+id.Name, "the password user name of"
			}
			if id.NKey == "" && id.Password == "" {
				continue // Validate refuses it below
			}
			who := fmt.Sprintf("%q", id.Name)
			if t.Name != "" {
				who = fmt.Sprintf("tenant %q's %q", t.Name, id.Name)
			}
			if other, dup := creds[cred]; dup {
				return nil, fmt.Errorf("%w: %s is %s %s too: the NATS server takes each user name and key once, whatever the account", ErrInvalidUser, who, what, other)
			}
			creds[cred] = who
		}
	}
	for _, t := range tenants {
		if t.Name != "" && !tenantRE.MatchString(t.Name) {
			return nil, fmt.Errorf("%w: tenant %q: 1-16 characters a-z, 0-9, starting with a letter", ErrInvalidUser, t.Name)
		}
		if seenTenant[t.Name] {
			return nil, fmt.Errorf("%w: tenant %q appears twice", ErrInvalidUser, t.Name)
		}
		seenTenant[t.Name] = true
		if t.MaxConnections < 0 || t.MaxEngineConnections < 0 {
			return nil, fmt.Errorf("%w: tenant %q: max connections %d and %d (engine), want 0 (no limit) or more", ErrInvalidUser, t.Name, t.MaxConnections, t.MaxEngineConnections)
		}
		if t.MaxStore < 0 {
			return nil, fmt.Errorf("%w: tenant %q: max store %d, want 0 (no limit) or more", ErrInvalidUser, t.Name, t.MaxStore)
		}
		if err := renderTenant(&b, t); err != nil {
			return nil, err
		}
	}
	b.WriteString("}\n")
	return []byte(b.String()), nil
}

func renderTenant(b *strings.Builder, t Tenant) error {
	stream := t.Stream
	if stream == "" {
		stream = DefaultStream
	}
	engine := Account(t.Name, Identity{Role: Engine})
	var engines, others []Identity
	seen := map[string]bool{}
	for _, id := range t.Users {
		if err := id.Validate(); err != nil {
			return err
		}
		if seen[id.Name] {
			return fmt.Errorf("%w: user %q appears twice", ErrInvalidUser, id.Name)
		}
		seen[id.Name] = true
		if id.Role == Engine {
			engines = append(engines, id)
		} else {
			others = append(others, id)
		}
	}
	if len(engines) == 0 {
		return fmt.Errorf("%w: tenant %q has no engine identity", ErrInvalidUser, t.Name)
	}

	js := "enabled"
	if t.MaxStore > 0 {
		js = fmt.Sprintf("{max_file: %d}", t.MaxStore)
	}
	fmt.Fprintf(b, "  %s {\n    jetstream: %s\n    users: [\n", q(engine), js)
	for _, id := range engines {
		fmt.Fprintf(b, "      {%s}  # %s\n", credential(id), id.Name)
	}
	granted := make([][]grant, len(others))
	for i, id := range others {
		gs, err := grants(id.Role, t.Simulators, stream)
		if err != nil {
			return err
		}
		granted[i] = gs
	}
	// Each export may be imported only by the tenant's accounts that import
	// it: another account on the same server (another tenant's, or one
	// added by hand) cannot import the queries or read the event stream.
	importers := map[string][]string{}
	for i, id := range others {
		for _, g := range granted[i] {
			if !commandSubject(g.subject) {
				importers[g.subject] = append(importers[g.subject], q(Account(t.Name, id)))
			}
		}
	}
	b.WriteString("    ]\n")
	if t.MaxEngineConnections > 0 {
		fmt.Fprintf(b, "    limits: {max_connections: %d}\n", t.MaxEngineConnections)
	}
	b.WriteString("    exports: [\n")
	for _, g := range exports(t.Simulators, stream) {
		if accs := importers[g.subject]; len(accs) > 0 { // none: nobody may import it
			fmt.Fprintf(b, "      {service: %s, accounts: [%s]%s}\n", q(g.subject), strings.Join(accs, ", "), response(g))
		}
	}
	// Each account's commands arrive under its own name, from an export
	// only that account may import.
	for i, id := range others {
		if slices.ContainsFunc(granted[i], func(g grant) bool { return commandSubject(g.subject) }) {
			acc := Account(t.Name, id)
			fmt.Fprintf(b, "      {service: %s, accounts: [%s]%s}\n", q(FromSubject(acc, "bankbook.cmd.>")), q(acc), response(grant{}))
		}
	}
	b.WriteString("    ]\n  }\n")

	for i, id := range others {
		gs := granted[i]
		var allow, deny []string
		for _, g := range gs {
			allow = append(allow, q(g.subject))
			for _, e := range g.except {
				deny = append(deny, q(e))
			}
		}
		perms := fmt.Sprintf("publish: {allow: [%s]", strings.Join(allow, ", "))
		if len(deny) > 0 {
			perms += fmt.Sprintf(", deny: [%s]", strings.Join(deny, ", "))
		}
		perms += `}, subscribe: {allow: ["_INBOX.>"]}`
		fmt.Fprintf(b, "  %s {  # role %s\n    users: [\n      {%s, permissions: {%s}}\n    ]\n",
			q(Account(t.Name, id)), id.Role, credential(id), perms)
		if t.MaxConnections > 0 {
			fmt.Fprintf(b, "    limits: {max_connections: %d}\n", t.MaxConnections)
		}
		b.WriteString("    imports: [\n")
		for _, g := range gs {
			if commandSubject(g.subject) {
				// Arrives as FromSubject: the actor is in the subject.
				fmt.Fprintf(b, "      {service: {account: %s, subject: %s}, to: %s, share: true}\n", q(engine), q(FromSubject(Account(t.Name, id), g.subject)), q(g.subject))
				continue
			}
			fmt.Fprintf(b, "      {service: {account: %s, subject: %s}, share: true}\n", q(engine), q(g.subject))
		}
		b.WriteString("    ]\n  }\n")
	}
	return nil
}

func credential(id Identity) string {
	if id.NKey != "" {
		return "nkey: " + q(id.NKey)
	}
	return fmt.Sprintf("user: %s, password: %s", q(id.Name), q(id.Password))
}

// Response thresholds: how long the server keeps, for each request that
// crosses an import, the mapping its reply goes back through (its memory
// too: about a kilobyte). nats-server's default is two minutes, and a
// stream export keeps the mapping that long even once answered, so a flood
// of small requests held gigabytes. A reply later than this is dropped: the
// engine answers a command within 10 s and a query within 7 s (server.Config),
// the monitoring verbs at once. The event stream's direct batch gets (a
// stream export too) begin at once and carry at most 500 commits or 4 MiB
// (eventstore.ReadDirect): a batch must arrive within 10 s.
const (
	responseThreshold      = 30 * time.Second
	srvResponseThreshold   = 5 * time.Second
	batchResponseThreshold = 10 * time.Second
)

func response(g grant) string {
	thr := responseThreshold
	switch {
	case g.subject == srv.subject:
		thr = srvResponseThreshold
	case g.stream:
		thr = batchResponseThreshold
	}
	s := fmt.Sprintf(", response_threshold: %q", thr.String())
	if g.stream {
		s = ", response: stream" + s
	}
	return s
}

func q(s string) string { return strconv.Quote(s) }

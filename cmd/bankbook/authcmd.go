package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
)

// authCmd is `bankbook auth config`: the nats-server accounts block for an
// external cluster, with the identities in DATA-DIR/auth (created if
// missing) or the operator's --auth-file.
func authCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "config" {
		return groupUsage(args, stdout, "usage: bankbook auth config [--data-dir DIR] [--auth-file FILE] [--simulators] [--max-connections-per-identity N] [--tenant NAME=DATA-DIR ...]")
	}
	fs := flag.NewFlagSet("auth config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./data", "the engine's data directory: its identities are in DATA-DIR/auth")
	authFile := fs.String("auth-file", "", "the operator's own users and roles (docs/security.md) instead of the generated app, feed, operator and auditor")
	sims := fs.Bool("simulators", false, "grant the simulator subjects (bankbook.sim.>) to app and operator")
	maxConns := fs.Int("max-connections-per-identity", engine.Defaults().MaxConnectionsPerIdentity, "connections each identity other than the engine's may hold at once (0: no limit)")
	var tenants []string
	fs.Func("tenant", "NAME=DATA-DIR: one tenant of a shared deployment (repeat per tenant; replaces --data-dir)", func(s string) error {
		name, dir, ok := strings.Cut(s, "=")
		if !ok || name == "" || dir == "" {
			return errors.New("want NAME=DATA-DIR")
		}
		tenants = append(tenants, s)
		return nil
	})
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if len(tenants) > 0 && *authFile != "" {
		return usageError("--auth-file applies to one deployment: give each tenant's users in its data directory instead")
	}
	var ts []auth.Tenant
	if len(tenants) == 0 {
		tenants = []string{"=" + *dataDir}
	}
	for _, s := range tenants {
		name, dir, _ := strings.Cut(s, "=")
		ids, err := auth.Identities(filepath.Join(dir, "auth"), *authFile)
		if err != nil {
			return err
		}
		ts = append(ts, auth.Tenant{Name: name, Users: ids, Simulators: *sims, MaxConnections: *maxConns})
	}
	conf, err := auth.Render(ts...)
	if err != nil {
		return usageError("%v", err)
	}
	_, err = fmt.Fprintf(stdout, "%s# Include this in the nats-server configuration, with JetStream enabled:\n#   jetstream { store_dir: ... }\n", conf)
	return err
}

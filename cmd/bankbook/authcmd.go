package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
)

// authCmd is `bankbook auth config`: the nats-server accounts block for an
// external cluster, with the identities in DATA-DIR/auth (created if
// missing) or the operator's --auth-file.
func authCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "config" {
		return groupUsage(args, stdout, "usage: bankbook auth config [--data-dir DIR] [--auth-file FILE] [--simulators] [--max-connections-per-identity N] [--engine-max-store SIZE] [--engine-max-connections N] [--tenant NAME=DATA-DIR ...] [--tenant-auth-file NAME=FILE ...]")
	}
	fs := flag.NewFlagSet("auth config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./data", "the engine's data directory: its identities are in DATA-DIR/auth")
	authFile := fs.String("auth-file", "", "the operator's own users and roles (docs/security.md) instead of the generated app, feed, operator and auditor")
	sims := fs.Bool("simulators", false, "grant the simulator subjects (bankbook.sim.>) to app and operator")
	maxConns := fs.Int("max-connections-per-identity", engine.Defaults().MaxConnectionsPerIdentity, "connections each identity other than the engine's may hold at once (0: no limit)")
	var maxStore int64
	fs.Func("engine-max-store", "JetStream file storage each engine account (each tenant's) may hold, every replica counted (200GiB holds about 66GiB of data at --replicas 3), e.g. 50GiB (0 or absent: no limit)", func(s string) (err error) {
		maxStore, err = parseSize(s)
		return err
	})
	maxEngineConns := fs.Int("engine-max-connections", 0, "connections each engine account (each tenant's) may hold at once (0: no limit)")
	var tenants []string
	fs.Func("tenant", "NAME=DATA-DIR: one tenant of a shared deployment (repeat per tenant; replaces --data-dir)", func(s string) error {
		name, dir, ok := strings.Cut(s, "=")
		if !ok || name == "" || dir == "" {
			return errors.New("want NAME=DATA-DIR")
		}
		tenants = append(tenants, s)
		return nil
	})
	tenantFiles := map[string]string{}
	fs.Func("tenant-auth-file", "NAME=FILE: a tenant's own users and roles, as --auth-file gives them for one deployment (repeat per tenant)", func(s string) error {
		name, file, ok := strings.Cut(s, "=")
		if !ok || name == "" || file == "" {
			return errors.New("want NAME=FILE")
		}
		if _, dup := tenantFiles[name]; dup {
			return fmt.Errorf("tenant %q has two auth files", name)
		}
		tenantFiles[name] = file
		return nil
	})
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if len(tenants) > 0 && *authFile != "" {
		return usageError("--auth-file applies to one deployment: give each tenant's users with --tenant-auth-file NAME=FILE")
	}
	if len(tenants) == 0 && len(tenantFiles) > 0 {
		return usageError("--tenant-auth-file applies to the tenants of --tenant")
	}
	var ts []auth.Tenant
	if len(tenants) == 0 {
		tenants = []string{"=" + *dataDir}
	}
	dirs := map[string]string{}
	for _, s := range tenants {
		name, dir, _ := strings.Cut(s, "=")
		same, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		if real, err := filepath.EvalSymlinks(same); err == nil {
			same = real
		}
		if other, ok := dirs[same]; ok && other != name {
			return usageError("tenants %s and %s have one data directory, %s: each needs its own (its identities are in it)", other, name, dir)
		}
		dirs[same] = name
		file := *authFile
		if f, ok := tenantFiles[name]; ok {
			file = f
			delete(tenantFiles, name)
		}
		ids, err := auth.Identities(filepath.Join(dir, "auth"), file)
		if err != nil {
			return err
		}
		ts = append(ts, auth.Tenant{Name: name, Users: ids, Simulators: *sims, MaxConnections: *maxConns, MaxStore: maxStore, MaxEngineConnections: *maxEngineConns})
	}
	if left := slices.Sorted(maps.Keys(tenantFiles)); len(left) > 0 {
		return usageError("--tenant-auth-file %s: no --tenant %s", left[0], left[0])
	}
	conf, err := auth.Render(ts...)
	if err != nil {
		return usageError("%v", err)
	}
	_, err = fmt.Fprintf(stdout, "%s# Include this in the nats-server configuration, with JetStream enabled:\n#   jetstream { store_dir: ... }\n", conf)
	return err
}

// parseSize reads a number of bytes: digits, optionally followed by K, M,
// G or T (powers of 1024, with or without "B" or "iB"; any case).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if u, ok := strings.CutSuffix(t, "IB"); ok {
		t = u
	} else {
		t = strings.TrimSuffix(t, "B")
	}
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			shift, t = 10*(i+1), t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q: want a number of bytes, such as 50GiB", s)
	}
	return n << shift, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/backup"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/engine"
)

// runBackup serves `bankbook backup --out DIR`: every JetStream asset of
// the engine's account, snapshotted by the server while the engine runs.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("backup", stderr)
	cf.role = auth.Engine // the JetStream API of the engine's account is the engine's
	out := fs.String("out", "", "directory to write the backup to; it must not exist")
	if err := parse(fs, args, required("out")); err != nil {
		return err
	}
	if _, err := os.Lstat(*out); err == nil {
		return usageError("backup: %s exists: give a new directory", *out)
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := backup.Take(ctx, c, *out, func(s backup.Stream) {
		if !cf.json {
			fmt.Fprintf(stderr, "  %-32s %10d messages  seq %d..%d  %d consumers  %s\n", s.Name, s.Messages, s.FirstSeq, s.LastSeq, s.Consumers, byteSize(s.Bytes))
		}
	})
	if ae := (*api.Error)(nil); errors.As(err, &ae) && ae.Code == api.CodeForbidden {
		return &exitError{code: exitRefused, err: fmt.Errorf("%w (backups need the engine's identity: --nkey data/auth/engine.nk)", err)}
	}
	if err != nil {
		return connError(err, c.Conn())
	}
	return printManifest(stdout, cf.json, "backed up to "+*out, m)
}

// runRestore serves `bankbook restore --from DIR --data-dir NEW`: the
// backup's streams into a new data directory, through its own embedded
// nats-server; `bankbook serve --data-dir NEW` then runs on them.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	from := fs.String("from", "", "the backup directory")
	dataDir := fs.String("data-dir", "", "the data directory to restore into: new, or without jetstream/ and readmodels.db")
	authFile := fs.String("auth-file", "", "the identities file the engine will run with (as serve's --auth-file); default: <data-dir>/auth, created when missing")
	if err := parse(fs, args, required("from", "data-dir")); err != nil {
		return err
	}
	if _, err := backup.ReadManifest(*from); err != nil {
		return fmt.Errorf("restore: %s: %w", *from, err)
	}
	if _, err := os.Lstat(filepath.Join(*dataDir, backup.ManifestFile)); err == nil {
		return usageError("restore: %s is a backup, not a data directory", *dataDir)
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	if err := datadir.SyncDir(filepath.Dir(filepath.Clean(*dataDir))); err != nil {
		return err
	}
	unlock, err := datadir.Lock(*dataDir)
	if err != nil {
		return err
	}
	defer func() { _ = unlock() }()
	marker := filepath.Join(*dataDir, engine.RestoreMarker)
	_, unfinished := os.Lstat(marker)
	for _, refuse := range []struct {
		file, why string
		ours      bool // what an unfinished restore leaves: replaced
	}{
		{engine.StoreDir(*dataDir), "restore into a new data directory", unfinished == nil},
		{filepath.Join(*dataDir, readModelsFile), "it holds the read models of another log: move it aside (serve rebuilds them from the restored log)", false},
	} {
		if _, err := os.Lstat(refuse.file); err != nil {
			continue
		}
		if !refuse.ours {
			return usageError("restore: %s exists: %s", refuse.file, refuse.why)
		}
		// A restore that got its store into place and died before it
		// removed the mark: its store may be another backup's; start over.
		if err := os.RemoveAll(refuse.file); err != nil {
			return err
		}
	}
	// Until every stream is in place, serve refuses the directory (a
	// restore that fails or is killed leaves the marker; the next restore
	// starts over).
	if err := os.WriteFile(marker, []byte("bankbook restore --from "+*from+" did not finish\n"), 0o600); err != nil {
		return err
	}
	if err := datadir.SyncDir(*dataDir); err != nil {
		return err
	}
	// The staged store is synced once, whole, before it is moved into
	// place: the server need not sync each restored message.
	m, err := restoreInto(ctx, engine.Config{DataDir: *dataDir, AuthFile: *authFile, Durability: "fast"}, *from,
		zerolog.New(stderr).Level(zerolog.ErrorLevel), func(s backup.Stream) {
			if !*asJSON {
				fmt.Fprintf(stderr, "  %-32s %10d messages  seq %d..%d  %d consumers\n", s.Name, s.Messages, s.FirstSeq, s.LastSeq, s.Consumers)
			}
		})
	if errors.Is(err, backup.ErrNotEmpty) {
		return usageError("restore: %v", err)
	}
	if err != nil {
		return fmt.Errorf("%w (serve refuses %s until a restore finishes: run it again)", err, *dataDir)
	}
	// The identities the embedded start made, if any, then the mark.
	if auth := filepath.Join(*dataDir, "auth"); fileExists(auth) {
		if err := datadir.SyncDir(auth); err != nil {
			return err
		}
	}
	if err := os.Remove(marker); err != nil {
		return err
	}
	if err := datadir.SyncDir(*dataDir); err != nil {
		return err
	}
	return printManifest(stdout, *asJSON, "restored into "+*dataDir+" (start it with: bankbook serve --data-dir "+*dataDir+")", m)
}

// restoreInto restores the backup in from into cfg's data directory
// through its own embedded server, whose store it fills beside the one serve
// uses and moves into place only once every stream is restored: a restore
// that fails, or is killed, leaves no store that serve would start on.
func restoreInto(ctx context.Context, cfg engine.Config, from string, log zerolog.Logger, progress backup.Progress) (backup.Manifest, error) {
	store := engine.StoreDir(cfg.DataDir)
	staging := store + ".restoring"
	if err := os.RemoveAll(staging); err != nil { // a killed restore's
		return backup.Manifest{}, err
	}
	m, err := func() (backup.Manifest, error) {
		srv, err := engine.StartEmbedded(cfg, staging, log)
		if err != nil {
			return backup.Manifest{}, err
		}
		defer srv.Shutdown()
		nc, err := srv.Connect()
		if err != nil {
			return backup.Manifest{}, err
		}
		defer nc.Close()
		// One server: a cluster's R3 streams come back as R1 (serve's
		// default --replicas).
		return backup.Restore(ctx, client.New(nc), from, 1, progress)
	}()
	if err == nil {
		err = datadir.SyncTree(staging)
	}
	if err == nil {
		err = os.Rename(staging, store)
	}
	if err != nil {
		_ = os.RemoveAll(staging)
		return backup.Manifest{}, err
	}
	return m, datadir.SyncDir(cfg.DataDir)
}

func printManifest(stdout io.Writer, asJSON bool, head string, m backup.Manifest) error {
	if asJSON {
		for i := range m.Streams {
			m.Streams[i].Restore = nil // the server's own description: in the manifest file
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d streams", head, len(m.Streams))
	for _, s := range m.Streams {
		if s.Name == auth.DefaultStream {
			fmt.Fprintf(&b, "; the event stream up to seq %d", s.LastSeq)
		}
	}
	fmt.Fprintf(&b, "\n  taken from %s to %s\n", m.StartedAt.Format("2006-01-02T15:04:05.000Z07:00"), m.FinishedAt.Format("2006-01-02T15:04:05.000Z07:00"))
	if len(m.Skipped) > 0 {
		fmt.Fprintf(&b, "  left out (rebuilt by the engine): %s\n", strings.Join(m.Skipped, ", "))
	}
	_, err := io.WriteString(stdout, b.String())
	return err
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

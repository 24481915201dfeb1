package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"

	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	verification "github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
)

// auditVerify is `bankbook audit verify`: it checks the event stream and
// the live read models (package audit) as the auditor, reading the stream
// with direct gets. The live read models compared are the running engine's
// (its content hash, bankbook.q.projection.status with hash) unless
// --data-dir is given: then DATA-DIR/readmodels.db, opened read-only, or
// the engine's again while the engine holds that file (bbolt's lock
// refuses a reader while a writer has it open). Without --data-dir and
// without an engine answering, ./data/readmodels.db if it is there. With
// --stopped it verifies a stopped engine's data directory whole, starting
// its nats-server in-process (stoppedEngine). It exits 0 when clean, 1 on
// findings and 2 when it could not run.
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := runVerify(ctx, args, stdout, stderr)
	var ee *exitError
	if err == nil || errors.Is(err, flag.ErrHelp) || (errors.As(err, &ee) && (ee.code == exitFailed || ee.code == exitUsage)) {
		return err
	}
	return &exitError{code: exitUsage, err: fmt.Errorf("audit verify could not run: %w", err)}
}

// holderTries is how many times verify asks for the read models' status
// until the engine holding --data-dir's answers: with n instances on one
// NATS, each answer is that one's with chance 1/n.
const holderTries = 32

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs, cf := newClientFlagSet("audit verify", stderr)
	cf.role = auth.Auditor // reading the event stream is the auditor's
	dataDir := fs.String("data-dir", "./data", "the data directory whose DATA-DIR/"+readModelsFile+" to compare (default: the running engine's read models, or ./data when no engine answers)")
	digest := fs.String("digest", "", "N:HEX: a stream digest you trust ('audit digest' at the time): a finding unless the stream's digest at sequence N is HEX")
	stopped := fs.Bool("stopped", false, "the engine of --data-dir is stopped (one that refuses to start, say): start its nats-server in this process, without listening, and verify its log and read-model file as the auditor (--nats-url and credentials are not used)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var trusted *eventstore.DigestResult
	if *digest != "" {
		d, err := parseTrustedDigest(*digest)
		if err != nil {
			return usageError("audit verify: --digest %v", err)
		}
		trusted = &d
	}
	var (
		c          *client.Client
		stoppedLog *eventstore.Store // --stopped: the set-aside records, as the engine
	)
	if *stopped {
		srv, stop, err := stoppedEngine(*dataDir, stderr)
		if err != nil {
			return err
		}
		defer stop()
		nc, err := srv.ConnectAs(auth.SeedFile(filepath.Join(*dataDir, "auth"), auth.Auditor))
		if err != nil {
			return err
		}
		c = client.New(nc)
		enc, err := srv.Connect() // the auditor may not read the set-aside bucket
		if err != nil {
			return err
		}
		defer enc.Close()
		ejs, err := jetstream.New(enc)
		if err != nil {
			return err
		}
		if stoppedLog, err = eventstore.Bind(ctx, ejs, eventstore.Config{Timeout: cf.timeout}); err != nil {
			return err
		}
	} else {
		var err error
		if c, err = cf.connect(); err != nil {
			return err
		}
	}
	defer c.Close()
	defer func() { err = explainRefusal(err, c) }()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		return err
	}
	codec := domain.Events()
	var setAside map[eventstore.Seq]bool
	// heldDir is the data directory whose read models are compared: when
	// its engine holds them, the engine answering must be that one.
	var heldDir string
	opts := verification.Options{
		Reader: eventstore.NewReader(js, eventstore.Config{Upcaster: codec, Timeout: cf.streamTimeout()}),
		Codec:  codec,
		Digest: trusted,
		Live: func(ctx context.Context) (verification.LiveState, error) {
			ctx, cancel := context.WithTimeout(ctx, cf.timeout)
			defer cancel()
			// Several instances on one NATS answer in turn (a queue
			// group), and one that joined has no address of its own: the
			// question is asked again until DIR's engine answers it.
			byLock := true // false once an engine refuses lock_id
			for try := 1; ; try++ {
				// The holder as DIR/LOCK says now (its engine may have
				// restarted meanwhile), for the question and the check.
				var pid int
				var lockID string
				if heldDir != "" {
					pid, lockID = datadir.Holder(heldDir)
				}
				// Another instance answers without hashing its read models.
				req := api.ProjectionStatusRequest{Hash: true}
				if byLock {
					req.LockID = lockID
				}
				st, _, err := client.Do(ctx, c, api.ProjectionStatus, req, nil)
				if ae := (*api.Error)(nil); req.LockID != "" && errors.As(err, &ae) && ae.Code == api.CodeInvalidInput && ae.Details["field"] == "lock_id" {
					// An engine from before lock_id (a rolling upgrade):
					// ask as it understands, every instance hashing.
					byLock = false
					try--
					continue
				}
				if err != nil {
					return verification.LiveState{}, err
				}
				if heldDir != "" && (lockID == "" || lockID != st.LockID) {
					if try < holderTries && lockID != "" {
						continue
					}
					return verification.LiveState{}, fmt.Errorf("%s is held by a running engine (PID %d) that is not the one answering at --nats-url (asked %d times): "+
						"point --nats-url at the NATS that engine uses, or stop it and verify again (its file is then read itself), or leave --data-dir out to verify an engine that answers",
						filepath.Join(heldDir, readModelsFile), pid, try)
				}
				return verification.LiveState{Hash: st.Hash, Seq: eventstore.Seq(st.HashAtSeq), BlockedAt: eventstore.Seq(st.BlockedAt), Blocked: st.Blocked,
					Versions: st.ProjectionVersions}, nil
			}
		},
		// When the engine holds the read-model file, its set-aside records
		// come from the engine too (read once, when the first damaged
		// commit is met).
		SetAside: func(ctx context.Context, seq eventstore.Seq) (bool, error) {
			if setAside == nil {
				ctx, cancel := context.WithTimeout(ctx, cf.timeout)
				defer cancel()
				rep, _, err := client.Do(ctx, c, api.EventSetAsides, api.SetAsidesRequest{}, nil)
				if err != nil {
					return false, fmt.Errorf("set-aside records: %w", err)
				}
				setAside = map[eventstore.Seq]bool{}
				for _, sa := range rep.SetAsides {
					setAside[eventstore.Seq(sa.Seq)] = true
				}
			}
			return setAside[seq], nil
		},
	}
	path := filepath.Join(*dataDir, readModelsFile)
	switch {
	case *stopped && !fileExists(path):
		return usageError("audit verify --stopped: no read models at %s", path)
	case *stopped:
		// No engine: the set-aside records themselves.
		opts.ReadModels, opts.Live, opts.SetAside = path, nil, nil
		opts.SetAsideRecords = func(ctx context.Context, seq eventstore.Seq) (bool, error) {
			_, ok, err := stoppedLog.SetAsideAt(ctx, seq)
			return ok, err
		}
	case !givenFlags(fs)["data-dir"] && engineAnswers(ctx, c, cf):
		// The engine at --nats-url is running: its own read models, not
		// a ./data that may be another engine's (or a stale copy).
	case fileExists(path):
		opts.ReadModels, heldDir = path, *dataDir
	case givenFlags(fs)["data-dir"]:
		// Asked for a file that is not there: checking the engine instead
		// would answer another question.
		return usageError("audit verify: no read models at %s (--data-dir): give the engine's data directory, or leave --data-dir out to compare with the running engine", path)
	}
	rep, err := verification.Verify(ctx, opts)
	if err != nil {
		return connError(err, c.Conn())
	}
	if cf.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprint(stdout, verifyText(rep))
	}
	if !rep.OK {
		return &exitError{code: exitFailed, err: fmt.Errorf("audit verify: %s", counted(len(rep.Findings), "finding"))}
	}
	return nil
}

// stoppedEngine starts the nats-server of the stopped engine of dataDir in
// this process, as serve would (its identities in dataDir/auth, its
// files), without listening. It holds the data directory's lock until
// stop: an engine started meanwhile is refused.
func stoppedEngine(dataDir string, stderr io.Writer) (srv *embedded.Server, stop func(), err error) {
	seed := auth.SeedFile(filepath.Join(dataDir, "auth"), auth.Auditor)
	// An unfinished restore first: it may not have written the log yet.
	if fileExists(filepath.Join(dataDir, engine.RestoreMarker)) {
		return nil, nil, usageError("audit verify --stopped: %s holds a restore that did not finish (%s): run the restore again", dataDir, engine.RestoreMarker)
	}
	if !fileExists(engine.StoreDir(dataDir)) || !fileExists(seed) {
		return nil, nil, usageError("audit verify --stopped: %s holds no log and identities of an engine with its own nats-server (%s, %s); an engine on an external NATS is verified through it, without --stopped", dataDir, engine.StoreDir(dataDir), seed)
	}
	unlock, err := datadir.Lock(dataDir)
	if errors.Is(err, datadir.ErrLocked) {
		return nil, nil, usageError("audit verify --stopped: %v (stop the engine first, or verify it running without --stopped)", err)
	}
	if err != nil {
		return nil, nil, usageError("audit verify --stopped: %v (the check takes the data directory's lock, as the engine does: it needs the directory writable)", err)
	}
	if srv, err = engine.StartEmbedded(engine.Config{DataDir: dataDir, Durability: "fast"}, "", zerolog.New(stderr).Level(zerolog.ErrorLevel)); err != nil {
		_ = unlock()
		return nil, nil, err
	}
	return srv, func() {
		srv.Shutdown()
		_ = unlock()
	}, nil
}

// engineAnswers reports whether an engine answers a projection status
// request on c (no hash asked: cheap).
func engineAnswers(ctx context.Context, c *client.Client, cf *clientFlags) bool {
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	_, _, err := client.Do(ctx, c, api.ProjectionStatus, api.ProjectionStatusRequest{}, nil)
	return err == nil
}

// verifyText is audit verify's human output.
func verifyText(r verification.Report) string {
	var b strings.Builder
	k := r.Checked
	fmt.Fprintf(&b, "verified seqs 1..%d: %d commits, %d events, %d postings on %d accounts, %d aggregates, %d wallets, %d bank transactions\n",
		k.LastSeq, k.Commits, k.Events, k.Postings, k.Accounts, k.Aggregates, k.Wallets, k.BankTransactions)
	if k.Damaged > 0 {
		fmt.Fprintf(&b, "damaged commits: %d (%d set aside)\n", k.Damaged, k.SetAside)
	}
	if k.Unchained > 0 {
		fmt.Fprintf(&b, "commits of format 1 (written before the hash chains): %d; they are checked in sequence, not by hash\n", k.Unchained)
	}
	switch k.ReadModels {
	case "file":
		fmt.Fprintf(&b, "live read models (file %s) compared with a fresh replay at seq %d\n", k.ReadModelsFile, k.ReadModelsSeq)
	case "engine":
		fmt.Fprintf(&b, "live read models (the engine's) compared with a fresh replay at seq %d\n", k.ReadModelsSeq)
	default:
		fmt.Fprintf(&b, "live read models: %s\n", k.ReadModels)
		if k.ReadModelsFile != "" {
			fmt.Fprintf(&b, "  file %s\n", k.ReadModelsFile)
		}
	}
	for _, p := range k.ReadModelsBehind {
		fmt.Fprintf(&b, "  projection %s stands behind, at checkpoint %d: compared with a fresh replay at seq %d\n", p.Projection, p.Seq, p.Seq)
	}
	fmt.Fprintf(&b, "checks: %s\n", strings.Join(k.Checks, ", "))
	if len(r.OpenItems) > 0 {
		fmt.Fprintf(&b, "open items (%d):\n", len(r.OpenItems))
		for _, it := range r.OpenItems {
			fmt.Fprintf(&b, "  %-30s %-15s %-24s %12s  %-10s age %s (seq %d)\n", it.Account, it.Kind, it.ID, itoa(it.Amount), it.Status, it.Age, it.Seq)
		}
	}
	if r.OK {
		b.WriteString("OK: no findings\n")
		return b.String()
	}
	fmt.Fprintf(&b, "FINDINGS (%d):\n", len(r.Findings))
	for _, f := range r.Findings {
		where := ""
		if f.Seq != 0 {
			where = fmt.Sprintf(" seq %d", f.Seq)
		}
		fmt.Fprintf(&b, "  [%s]%s: %s\n", f.Check, where, f.Message)
		for _, acct := range slices.Sorted(maps.Keys(f.Deltas)) {
			fmt.Fprintf(&b, "      %-40s %+d\n", acct, f.Deltas[acct])
		}
	}
	return b.String()
}

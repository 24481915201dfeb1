package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// Check names, as findings carry them.
const (
	CheckTrialBalance     = "trial_balance"
	CheckBankTransactions = "bank_transactions"
	CheckWallets          = "wallets"
	CheckClearing         = "clearing"
	CheckAggregates       = "aggregates"
	CheckChains           = "chains"
	CheckNoEventSkipped   = "no_event_skipped"
	CheckReadModels       = "read_models"
	CheckDigest           = "digest"
	CheckReconciliations  = "reconciliations"
)

// Options configure Verify. Reader is required; the zero value of every
// other field means its default.
type Options struct {
	// Reader reads the event stream (direct gets only).
	Reader *eventstore.Reader
	// Codec decodes events. Default domain.Events().
	Codec *domain.Codec
	// ReadModels is the path of the live read-model file (the engine's
	// DATA-DIR/readmodels.db), opened read-only. Empty: the file is not
	// opened, and Live alone says what the live read models hold.
	ReadModels string
	// Live, if not nil, reports the live read models' content hash and the
	// checkpoint it was computed at, as the running engine computes it:
	// Verify asks it when ReadModels is empty or held by the engine
	// (projections.ErrLocked). Without either, the read_models check is
	// not run (Checked.ReadModels says so).
	Live func(ctx context.Context) (LiveState, error)
	// SetAside, if not nil, reports whether an operator set the damaged
	// commit at seq aside, when the skipped-commit records of the live
	// read models cannot be read (ReadModels empty, or held by the
	// engine): when they can, they alone say so.
	SetAside func(ctx context.Context, seq eventstore.Seq) (bool, error)
	// SetAsideRecords, if not nil, reports from the set-aside records
	// themselves (eventstore.Store.SetAsideAt, which needs the engine's
	// identity) whether the damaged commit at seq was set aside. When it
	// is set it alone says so: the read models' copies of the records
	// (their skipped-commit records, and SetAside) follow them, and a flag
	// written into a file sets nothing aside.
	SetAsideRecords func(ctx context.Context, seq eventstore.Seq) (bool, error)
	// Digest, if not nil, is a stream digest the verifier trusts (kept
	// elsewhere when it was computed, eventstore.Digest): the stream's
	// digest at Digest.Seq must equal Digest.Digest. It names a stream
	// rewritten consistently, or truncated before that sequence, which
	// nothing inside the stream can (ADR 0009).
	Digest *eventstore.DigestResult
	// TempDir is where the fresh replay is built (and removed). Default
	// os.TempDir().
	TempDir string
	// Now is the clock for the ages of open items. Default time.Now.
	Now func() time.Time
}

// LiveState is what the live read models hold: their content hash at
// checkpoint Seq.
type LiveState struct {
	Hash string
	Seq  eventstore.Seq
	// Versions are the engine's projection versions by name; nil when the
	// engine does not say (one older than projection_versions).
	Versions map[string]int
	// BlockedAt, if not 0, is a commit the engine's read models cannot
	// apply, which holds them at Seq; Blocked says why.
	BlockedAt eventstore.Seq
	Blocked   string
}

func (o *Options) setDefaults() {
	if o.Codec == nil {
		o.Codec = domain.Events()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
}

// Validate reports what makes o unusable.
func (o Options) Validate() error {
	if o.Reader == nil {
		return fmt.Errorf("%w: no event stream Reader", ErrInvalidOptions)
	}
	return nil
}

// Finding is one thing a check found wrong.
type Finding struct {
	Check   string `json:"check"`
	Message string `json:"message"`
	// Seq is the stream sequence of the commit the finding is about; 0
	// when it has none.
	Seq eventstore.Seq `json:"seq,omitempty"`
	// Aggregate ("type/id") and Account name what it is about, when known.
	Aggregate string `json:"aggregate,omitempty"`
	Account   string `json:"account,omitempty"`
	// Deltas are the account deltas of the commit at Seq (trial_balance).
	Deltas map[string]int64 `json:"deltas,omitempty"`
}

// OpenItem is an item that explains part of a clearing account's balance.
type OpenItem struct {
	Account string `json:"account"`
	// Kind is "orphan_deposit" (suspense), "payout" (payouts pending) or
	// "wallet_payment" (wallet payments pending); ID is the deposit's, the
	// payout's or the order's.
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Amount int64  `json:"amount"`
	// Status says where the item is (payouts: requested, or failed and
	// not yet returned to its source).
	Status string `json:"status,omitempty"`
	// Seq is the commit that opened the item, Since when it happened,
	// Age how long ago that is (AgeSeconds in whole seconds).
	Seq        eventstore.Seq `json:"seq"`
	Since      time.Time      `json:"since"`
	Age        string         `json:"age"`
	AgeSeconds int64          `json:"age_seconds"`
}

// MarshalJSON writes Since in domain.TimeLayout, as the API writes every
// time (encoding/json would drop a whole second's fraction).
func (o OpenItem) MarshalJSON() ([]byte, error) {
	type plain OpenItem
	return json.Marshal(struct {
		plain
		Since string `json:"since"`
	}{plain(o), domain.FormatTime(o.Since)})
}

// Checked counts what Verify looked at.
type Checked struct {
	// LastSeq is the stream sequence the verification read up to.
	LastSeq    eventstore.Seq `json:"last_seq"`
	Commits    int            `json:"commits"`
	Events     int            `json:"events"`
	Postings   int            `json:"postings"`
	Accounts   int            `json:"accounts"`
	Aggregates int            `json:"aggregates"`
	Wallets    int            `json:"wallets"`
	// BankTransactions is how many distinct bank transactions the
	// deposits name.
	BankTransactions int `json:"bank_transactions"`
	Damaged          int `json:"damaged"`
	// Unchained counts the format 1 commits: no hash links, so the
	// chains check followed their sequence links only.
	Unchained int `json:"unchained"`
	SetAside  int `json:"set_aside"`
	OpenItems int `json:"open_items"`
	// ReadModels says how the live read models were compared: "file"
	// (opened read-only), "engine" (the engine's hash, the file being
	// held), or "not checked" with why (a read_models finding says why a
	// file was not: it cannot be read).
	ReadModels string `json:"read_models"`
	// ReadModelsFile is the file compared ("file"), or the one that could
	// not be.
	ReadModelsFile string `json:"read_models_file,omitempty"`
	// ReadModelsSeq is the live checkpoint compared at.
	ReadModelsSeq eventstore.Seq `json:"read_models_seq,omitempty"`
	// ReadModelsBehind lists the projections of a read-model file that
	// stand behind ReadModelsSeq, each compared at its own checkpoint.
	ReadModelsBehind []ProjectionCheckpoint `json:"read_models_behind,omitempty"`
	// Checks are the checks run.
	Checks []string `json:"checks"`
}

// ProjectionCheckpoint is a projection of the live read models and the
// checkpoint it stands at.
type ProjectionCheckpoint struct {
	Projection string         `json:"projection"`
	Seq        eventstore.Seq `json:"seq"`
}

// Report is the outcome of a verification: OK when there is no finding.
type Report struct {
	OK        bool       `json:"ok"`
	Findings  []Finding  `json:"findings"`
	Checked   Checked    `json:"checked"`
	OpenItems []OpenItem `json:"open_items"`
}

// Verify runs every check (see the package documentation) and returns the
// report. An error (ErrCannotRun, ErrInvalidOptions) means it could not run;
// findings are in the Report.
func Verify(ctx context.Context, opts Options) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	opts.setDefaults()
	rep := Report{Findings: []Finding{}, OpenItems: []OpenItem{}}

	// The live read models first: their skipped-commit records say which
	// damaged commits an operator set aside.
	live, liveErr := liveState(ctx, opts, &rep)
	if liveErr != nil {
		return Report{}, liveErr
	}

	switch {
	case opts.SetAsideRecords != nil:
		// The set-aside records themselves are the answer, not a file's
		// copy of them: a flag written into the file sets nothing aside.
		opts.SetAside, live.setAside = nil, nil
	case live.fromFile:
		opts.SetAside = nil // the file's own records are the answer
	}
	f := newFolder(opts, live.setAside)
	dg := digestCheck{want: opts.Digest, d: eventstore.NewDigester()}
	next := eventstore.Seq(1) // the sequence the stream must hold next
	last, err := opts.Reader.Read(ctx, func(ctx context.Context, batch []eventstore.Commit) error {
		for _, c := range batch {
			if c.Seq != next {
				missing := &eventstore.MissingError{From: next, To: c.Seq - 1}
				rep.Findings = append(rep.Findings, Finding{Check: CheckChains, Seq: next,
					Message: fmt.Sprintf("%s (the next message is seq %d); no rebuild of the read models gets past it", strings.TrimPrefix(missing.Error(), "eventstore: "), c.Seq)})
			}
			next = c.Seq + 1
			dg.add(c, &rep)
			if err := f.commit(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	var tail *eventstore.TailMissingError
	if errors.As(err, &tail) {
		// Everything up to the last message there is was checked; what
		// came after it is gone, and no chain points at it.
		rep.Findings = append(rep.Findings, Finding{Check: CheckChains, Seq: tail.After + 1,
			Message: fmt.Sprintf("the event stream's last message is missing: nothing after seq %d can be read, so the end of the log (seq %d and on) was lost", tail.After, tail.After+1)})
		err = nil
	}
	if err != nil {
		return Report{}, fmt.Errorf("%w: read the event stream: %w", ErrCannotRun, err)
	}
	f.finish(&rep)
	rep.Checked.LastSeq = last
	rep.Checked.Checks = []string{CheckTrialBalance, CheckBankTransactions, CheckWallets, CheckClearing, CheckChains, CheckAggregates, CheckNoEventSkipped, CheckReconciliations}
	if opts.Digest != nil {
		rep.Checked.Checks = append(rep.Checked.Checks, CheckDigest)
		dg.finish(last, &rep)
	}

	if live.ok {
		rep.Checked.Checks = append(rep.Checked.Checks, CheckReadModels)
		compare := func() error { return compareReadModels(ctx, opts, live.state, live.file(opts), &rep) }
		if live.projections != nil {
			compare = func() error { return compareProjections(ctx, opts, live.projections, opts.ReadModels, &rep) }
		}
		if err := compare(); err != nil {
			return Report{}, err
		}
		if b := live.state.BlockedAt; b != 0 {
			rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: b,
				Message: fmt.Sprintf("the live read models cannot apply the commit at seq %d and stay at checkpoint %d: %s", b, live.state.Seq, live.state.Blocked)})
		}
	}
	// By sequence; findings without one (end-of-stream balances) last.
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i].Seq, rep.Findings[j].Seq
		return a != 0 && (b == 0 || a < b)
	})
	rep.OK = len(rep.Findings) == 0
	return rep, nil
}

// digestCheck computes the stream digest as the stream is read and
// compares it with a trusted one at its sequence.
type digestCheck struct {
	want *eventstore.DigestResult
	d    *eventstore.Digester
	done bool
}

func (g *digestCheck) add(c eventstore.Commit, rep *Report) {
	if g.want == nil || g.done || c.Seq > g.want.Seq {
		return
	}
	g.d.Add(c.Seq, c.Hash)
	if c.Seq == g.want.Seq {
		g.compare(c.Seq, rep)
	}
}

func (g *digestCheck) compare(at eventstore.Seq, rep *Report) {
	g.done = true
	if got := g.d.Result(g.want.Seq); !strings.EqualFold(got.Digest, g.want.Digest) {
		rep.Findings = append(rep.Findings, Finding{Check: CheckDigest, Seq: at,
			Message: fmt.Sprintf("the stream's digest at seq %d is %s, not the trusted %s: a message up to seq %d was changed, removed, inserted or reordered", g.want.Seq, got.Digest, g.want.Digest, g.want.Seq)})
	}
}

// finish covers a trusted digest the stream never reached: truncated,
// unless the last messages before it were deleted (the digest covers
// what is there: compare).
func (g *digestCheck) finish(last eventstore.Seq, rep *Report) {
	if g.done {
		return
	}
	if last < g.want.Seq {
		rep.Findings = append(rep.Findings, Finding{Check: CheckDigest, Seq: last,
			Message: fmt.Sprintf("the stream ends at seq %d, before the trusted digest's seq %d: it was truncated", last, g.want.Seq)})
		g.done = true
		return
	}
	g.compare(g.want.Seq, rep)
}

// live is what liveState learnt.
type live struct {
	ok    bool // state is known: compare
	state LiveState
	// projections, when the file's projections stand at different
	// checkpoints (it has no content hash, and state none), are its
	// projections with their checkpoints: compareProjections.
	projections []projections.ProjectionState
	setAside    map[eventstore.Seq]bool
	fromFile    bool // setAside holds the file's skipped-commit records
}

// file is the live read-model file when it was opened (not the engine's
// hash), for naming where it differs.
func (l live) file(opts Options) string {
	if l.fromFile {
		return opts.ReadModels
	}
	return ""
}

// liveState opens the live read models read-only, or asks Options.Live
// while the engine holds them. A damaged or stale file is a finding.
func liveState(ctx context.Context, opts Options, rep *Report) (live, error) {
	l := live{setAside: map[eventstore.Seq]bool{}}
	if opts.ReadModels != "" {
		st, err := projections.OpenReadOnly(opts.ReadModels, &projections.Options{Codec: opts.Codec})
		switch {
		case err == nil:
			defer st.Close()
			skipped, err := st.Skipped()
			if err != nil {
				return l, fmt.Errorf("%w: live read models: %w", ErrCannotRun, err)
			}
			for _, sc := range skipped {
				if sc.SetAside {
					l.setAside[sc.Seq] = true
				}
			}
			l.fromFile = true
			hash, cp, err := st.Hash()
			if err != nil {
				rep.Checked.ReadModels, rep.Checked.ReadModelsFile = "file", opts.ReadModels
				if errors.Is(err, projections.ErrRebuilding) {
					// Projections at different checkpoints: each is
					// compared at its own (compareProjections).
					if ps, err := st.Projections(); err == nil && len(ps) > 0 {
						l.ok, l.projections = true, ps
						return l, nil
					}
				}
				rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Message: fmt.Sprintf("the live read models %s have no content hash: %v", opts.ReadModels, err)})
				rep.Checked.ReadModels = notCompared
				return l, nil
			}
			rep.Checked.ReadModels, rep.Checked.ReadModelsFile = "file", opts.ReadModels
			l.ok, l.state = true, LiveState{Hash: hash, Seq: cp}
			return l, nil
		case errors.Is(err, projections.ErrLocked) && opts.Live != nil:
			// The engine holds the file: its own hash instead.
		case errors.Is(err, projections.ErrDamaged), errors.Is(err, projections.ErrStale):
			rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Message: fmt.Sprintf("the live read models cannot be read: %v", err)})
			rep.Checked.ReadModels, rep.Checked.ReadModelsFile = notCompared, opts.ReadModels
			return l, nil
		default:
			return l, fmt.Errorf("%w: live read models: %w", ErrCannotRun, err)
		}
	}
	if opts.Live == nil {
		rep.Checked.ReadModels = "not checked: no live read models given"
		return l, nil
	}
	st, err := opts.Live(ctx)
	if err != nil {
		return l, fmt.Errorf("%w: live read models from the engine: %w", ErrCannotRun, err)
	}
	rep.Checked.ReadModels = "engine"
	l.ok, l.state = true, st
	return l, nil
}

// notCompared is Checked.ReadModels for a read-model file that could not
// be compared (a read_models finding says why).
const notCompared = "not checked: the file cannot be compared (see the read_models finding)"

// compareReadModels replays the stream up to the live checkpoint into a
// temporary file and compares the content hashes; when they differ and the
// live file (liveFile) could be read, it also names the first key of each
// bucket where the two files differ (at most maxDifferences findings).
func compareReadModels(ctx context.Context, opts Options, live LiveState, liveFile string, rep *Report) error {
	if diff := versionsDiffer(live.Versions, projections.Versions(projections.DefaultProjections())); diff != "" {
		// Another bankbook's projections hash otherwise: no comparison.
		rep.Checked.ReadModels = "not checked: the engine's projections are of other versions than this bankbook's"
		rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: live.Seq,
			Message: fmt.Sprintf("the live read models are of other projection versions than this bankbook's (%s): not compared; verify with the bankbook the engine runs", diff)})
		return nil
	}
	rep.Checked.ReadModelsSeq = live.Seq
	dir, err := os.MkdirTemp(opts.TempDir, "bankbook-verify-")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotRun, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "readmodels.db")
	po := &projections.Options{Codec: opts.Codec}
	hash, ok, err := replayUntil(ctx, opts, live.Seq, path, "the live read models", rep)
	if err != nil || !ok {
		return err
	}
	if hash != live.Hash {
		rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: live.Seq,
			Message: fmt.Sprintf("the live read models at checkpoint %d have content hash %s; a fresh replay up to seq %d has %s%s", live.Seq, live.Hash, live.Seq, hash, unknownVersions(live, liveFile))})
		if liveFile != "" {
			return nameDifferences(liveFile, path, po, live.Seq, rep)
		}
	}
	return nil
}

// versionsDiffer names the projections whose versions differ between live
// and own ("orders: engine 4, here 5", "orders: engine none, here 5"); ""
// when they agree or live is nil (not known).
func versionsDiffer(live, own map[string]int) string {
	if live == nil {
		return ""
	}
	var diffs []string
	for name, v := range own {
		switch lv, ok := live[name]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: engine none, here %d", name, v))
		case lv != v:
			diffs = append(diffs, fmt.Sprintf("%s: engine %d, here %d", name, lv, v))
		}
	}
	for name, v := range live {
		if _, ok := own[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: engine %d, here none", name, v))
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}

// unknownVersions is what a content-hash finding adds when the engine did
// not say its projection versions.
func unknownVersions(live LiveState, liveFile string) string {
	if live.Versions != nil || liveFile != "" {
		return ""
	}
	return " (the engine does not say its projection versions: one running an older bankbook, whose projections may differ from this one's, hashes otherwise)"
}

// compareProjections compares a read-model file (liveFile) whose
// projections (ps, as liveState read them) stand at different checkpoints,
// which has no content hash: for each checkpoint, from the lowest, it
// replays the stream up to it into a temporary file and names the first
// key of each bucket where the projections standing there differ from the
// replay's, at that checkpoint. A projection behind the others is no
// finding by itself (an engine stopped while it rebuilt one leaves such a
// file); Checked.ReadModelsBehind lists them.
func compareProjections(ctx context.Context, opts Options, ps []projections.ProjectionState, liveFile string, rep *Report) error {
	at := map[eventstore.Seq][]string{}
	for _, p := range ps {
		at[p.Checkpoint] = append(at[p.Checkpoint], p.Name)
	}
	cps := make([]eventstore.Seq, 0, len(at))
	for cp := range at {
		cps = append(cps, cp)
	}
	slices.Sort(cps)
	high := cps[len(cps)-1]
	rep.Checked.ReadModelsSeq = high
	rep.Checked.ReadModelsBehind = nil
	for _, p := range ps {
		if p.Checkpoint < high {
			rep.Checked.ReadModelsBehind = append(rep.Checked.ReadModelsBehind, ProjectionCheckpoint{Projection: p.Name, Seq: p.Checkpoint})
		}
	}
	dir, err := os.MkdirTemp(opts.TempDir, "bankbook-verify-")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotRun, err)
	}
	defer os.RemoveAll(dir)
	po := &projections.Options{Codec: opts.Codec}
	left := maxDifferences
	for _, cp := range cps {
		names := at[cp]
		who := "the live read models of " + projectionNames(names)
		path := filepath.Join(dir, fmt.Sprintf("readmodels-%d.db", cp))
		_, ok, err := replayUntil(ctx, opts, cp, path, who, rep)
		if err != nil {
			return err
		}
		if !ok {
			// What holds the replay back (named) holds back every
			// checkpoint further on too.
			return nil
		}
		diffs, err := projectionDifferences(liveFile, path, po, ps, names, cp, max(left, 1))
		if err != nil {
			return err
		}
		if len(diffs) > 0 {
			rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: cp,
				Message: fmt.Sprintf("%s at checkpoint %d differ from a fresh replay up to seq %d (the file's projections stand at checkpoints %d to %d)", who, cp, cp, cps[0], high)})
			diffs = diffs[:min(len(diffs), left)]
			left -= len(diffs)
			addDifferences(diffs, cp, rep)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("%w: %w", ErrCannotRun, err)
		}
	}
	return nil
}

// projectionDifferences opens the live read-model file again and returns
// the first difference of each bucket of the projections names (which stand
// at checkpoint cp) between it and the replay at replayed, at most max. The
// file's checkpoints must still be those of ps, read when the verification
// began: an engine that opened it since moved them, and the comparison
// cannot be made.
func projectionDifferences(liveFile, replayed string, po *projections.Options, ps []projections.ProjectionState, names []string, cp eventstore.Seq, max int) ([]projections.Difference, error) {
	a, err := projections.OpenReadOnly(liveFile, po)
	if err != nil {
		return nil, fmt.Errorf("%w: live read models %s, opened again to compare them at checkpoint %d: %w", ErrCannotRun, liveFile, cp, err)
	}
	defer a.Close()
	now, err := a.Projections()
	if err != nil {
		return nil, fmt.Errorf("%w: live read models %s: %w", ErrCannotRun, liveFile, err)
	}
	if !slices.Equal(now, ps) {
		return nil, fmt.Errorf("%w: the live read models %s changed during the verification (their projections' checkpoints moved): verify again while no engine runs on them", ErrCannotRun, liveFile)
	}
	return replayDifferences(a, replayed, po, names, max)
}

// projectionNames is "projection a" or "projections a, b and c".
func projectionNames(names []string) string {
	if len(names) == 1 {
		return "projection " + names[0]
	}
	return "projections " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// replayUntil replays the stream up to seq (0: the empty read models) into
// a new file at path and returns its content hash. When the stream cannot
// be replayed that far (it ends before seq, its end or a message inside it
// is missing, or a commit does not fit the read models) it adds a
// read_models finding about who (the live read models standing at seq) and
// returns ok false.
func replayUntil(ctx context.Context, opts Options, seq eventstore.Seq, path, who string, rep *Report) (hash string, ok bool, err error) {
	po := &projections.Options{Codec: opts.Codec}
	if seq == 0 {
		st, err := projections.Open(path, po)
		if err != nil {
			return "", false, fmt.Errorf("%w: empty read models: %w", ErrCannotRun, err)
		}
		hash, _, err = st.Hash()
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", false, fmt.Errorf("%w: empty read models: %w", ErrCannotRun, err)
		}
		return hash, true, nil
	}
	res, err := projections.ReplayWith(ctx, opts.Reader, path, po, &projections.ReplayOptions{UntilSeq: seq})
	if errors.Is(err, projections.ErrBeyondEnd) {
		rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: seq,
			Message: fmt.Sprintf("%s are at checkpoint %d, beyond the end of the event stream: %v", who, seq, err)})
		return "", false, nil
	}
	var tail *eventstore.TailMissingError
	if errors.As(err, &tail) {
		rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: tail.After + 1,
			Message: fmt.Sprintf("%s are at checkpoint %d, but the event stream has nothing to read after seq %d (its end was lost): they hold commits the log no longer has, and are not compared", who, seq, tail.After)})
		return "", false, nil
	}
	var ge *projections.GapError
	if errors.As(err, &ge) {
		// A commit is missing from the stream (chains names what
		// pointed at it): no replay gets past it.
		rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: ge.Checkpoint + 1,
			Message: fmt.Sprintf("the event stream has no message at seq %d (the next is %d): a fresh replay cannot rebuild the read models past it, so %s at checkpoint %d are not compared", ge.Checkpoint+1, ge.Got, who, seq)})
		return "", false, nil
	}
	var ce *projections.CommitError
	if errors.As(err, &ce) {
		// An event that does not fit the read models: the live ones
		// cannot hold what the events say either.
		rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: ce.Seq,
			Message: fmt.Sprintf("a fresh replay fails at seq %d: %v", ce.Seq, ce)})
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: replay up to seq %d: %w", ErrCannotRun, seq, err)
	}
	return res.Hash, true, nil
}

// maxDifferences bounds the read_models findings that name a place.
const maxDifferences = 10

// nameDifferences adds a read_models finding for the first difference of
// each bucket between the live file and a fresh replay's.
func nameDifferences(liveFile, replayed string, po *projections.Options, at eventstore.Seq, rep *Report) error {
	a, err := projections.OpenReadOnly(liveFile, po)
	if err != nil {
		return nil // taken by an engine since (the hash finding stands)
	}
	defer a.Close()
	diffs, err := replayDifferences(a, replayed, po, nil, maxDifferences)
	if err != nil {
		return err
	}
	addDifferences(diffs, at, rep)
	return nil
}

// replayDifferences returns the first difference of each bucket of the
// projections names (nil: all) between the live read models a and the
// replay at replayed, at most max.
func replayDifferences(a *projections.Store, replayed string, po *projections.Options, names []string, max int) ([]projections.Difference, error) {
	b, err := projections.OpenReadOnly(replayed, po)
	if err != nil {
		return nil, fmt.Errorf("%w: replayed read models: %w", ErrCannotRun, err)
	}
	defer b.Close()
	diffs, err := projections.DiffProjections(a, b, names, max)
	if err != nil {
		return nil, fmt.Errorf("%w: comparing the read models: %w", ErrCannotRun, err)
	}
	return diffs, nil
}

// addDifferences adds a read_models finding, at the checkpoint at, for
// each difference between the live read models and a replay up to it.
func addDifferences(diffs []projections.Difference, at eventstore.Seq, rep *Report) {
	for _, d := range diffs {
		rep.Findings = append(rep.Findings, Finding{Check: CheckReadModels, Seq: at,
			Message: fmt.Sprintf("the live read models differ from a fresh replay up to seq %d at %s (live against replay)", at, d)})
	}
}

package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
)

// Run does one reliability run as cfg says and checks it. The error is
// nil when every check passed; it matches ErrChecksFailed when the run
// completed and a check failed (the Report says which; an engine that did
// not come back after a kill is one, matching ErrEngine too), ErrEngine
// alone when the engine could not be started at all, and is ctx's error
// when ctx ended first. The Report is never nil.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	began := time.Now()
	cfg.setDefaults()
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	rep := &Report{Seed: cfg.Seed, RunID: fmt.Sprintf("%06x", cfg.Seed&0xffffff), Dir: cfg.Dir, Clients: cfg.Clients, Cycles: cfg.Cycles}
	defer func() { rep.Elapsed = time.Since(began) }()
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("soak config: %w", err)
	}
	rep.Instances = cfg.Instances
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return rep, err
	}
	acks, err := openAckLog(filepath.Join(cfg.Dir, "acks.jsonl"))
	if err != nil {
		return rep, err
	}
	defer acks.Close()
	prov, err := newProvider(cfg.Dir)
	if err != nil {
		return rep, err
	}
	defer prov.close()
	engs, err := newEngines(cfg.Binary, cfg.Dir, cfg.Instances, cfg.ServeArgs, prov)
	if err != nil {
		return rep, err
	}
	defer func() { // whatever happens, panics included, no engine outlives the run
		for _, e := range engs {
			_ = e.Kill()
		}
	}()
	eng := engs[0] // the NATS server's
	log := cfg.Log.With().Str("run_id", rep.RunID).Logger()
	log.Info().Str("dir", cfg.Dir).Uint64("seed", cfg.Seed).Int("clients", cfg.Clients).Int("instances", cfg.Instances).Int("cycles", cfg.Cycles).Str("nats", eng.URL()).Msg("soak: starting the engine")
	for _, e := range engs {
		if err := e.start(); err != nil {
			return rep, err
		}
		if err := e.waitReady(ctx, cfg.ReadyTimeout); err != nil {
			return rep, err
		}
	}

	conns := make([]*nats.Conn, 0, cfg.Clients+1)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for i := range cfg.Clients + 1 {
		// Clients act as the operator (orders, deposits, payouts, the
		// simulated bank); the last connection reads the event stream for
		// the verdict, so it is the engine's.
		role := auth.Operator
		if i == cfg.Clients {
			role = auth.Engine
		}
		nkey, err := nats.NkeyOptionFromSeed(eng.Seed(role))
		if err != nil {
			return rep, fmt.Errorf("client %d: %w", i, err)
		}
		nc, err := nats.Connect(eng.URL(), nats.Name(fmt.Sprintf("bankbook-soak-%d", i)), nats.MaxReconnects(-1), nkey,
			nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true), nats.NoCallbacksAfterClientClose())
		if err != nil {
			return rep, fmt.Errorf("connect client %d: %w", i, err)
		}
		conns = append(conns, nc)
	}
	js, err := jetstream.New(conns[cfg.Clients])
	if err != nil {
		return rep, fmt.Errorf("jetstream: %w", err)
	}
	v := &verifier{c: client.New(conns[cfg.Clients]), timeout: 30 * time.Second, js: js}
	// From the first kill on, bank statements are reconciled while the
	// engine is killed; at the end each is made again, and a whole one
	// after them.
	rc := reconciler{bin: cfg.Binary, url: eng.URL(), seed: eng.Seed(auth.Operator)}
	kr := &killReconciles{}
	kctx, cancelKR := context.WithCancel(ctx)
	defer func() {
		cancelKR()
		kr.finish()
	}()
	aims := make(chan time.Duration)
	onKill := func(int) { kr.start(kctx, rc, acks, cfg.Dir, aims) }

	// The traffic: workers stop at their next iteration once stop closes;
	// wctx ends their requests too (on an early return).
	tr := &traffic{cfg: cfg, runID: rep.RunID, log: acks, n: &counters{}}
	wctx, cancelWorkers := context.WithCancel(ctx)
	defer cancelWorkers()
	stop := make(chan struct{})
	stopTraffic := sync.OnceFunc(func() { close(stop) })
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		w := newWorker(tr, i+1, conns[i], cfg.Seed)
		wg.Go(func() { w.run(wctx, stop) })
	}
	defer func() {
		stopTraffic()
		cancelWorkers()
		wg.Wait()
	}()
	trafficBegan := time.Now()
	restarts := rep.check("engine restarts")
	if err := killCycles(ctx, cfg, engs, rep, restarts, log, onKill, aims); err != nil {
		rep.finish()
		if ctx.Err() == nil && errors.Is(err, ErrEngine) {
			// An engine that does not come back after a kill is a finding.
			return rep, fmt.Errorf("%w: %w", ErrChecksFailed, err)
		}
		return rep, err
	}
	// A last stretch on a live engine, so that requests caught by the last
	// kill finish; then the clients stop at their next iteration.
	select {
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-time.After(cfg.MinUp):
	}
	stopTraffic()
	stopped := time.Now()
	if !waitGroup(&wg, cfg.RequestBudget+cfg.AttemptTimeout+30*time.Second) {
		rep.note("clients still busy after their request budget; stopped")
		cancelWorkers()
		wg.Wait()
	}
	rep.Traffic = time.Since(trafficBegan)
	log.Info().Str("stopping_took", time.Since(stopped).Round(time.Millisecond).String()).Msg("soak: clients stopped")
	tr.n.collect(rep)
	log.Info().Int("kills", rep.Kills).Int64("requests", rep.Requests).Int64("acks", rep.Acks).Msg("soak: traffic done; waiting for the engine to go idle")

	logged := rep.check("acks logged before counted")
	all, err := ReadAcks(filepath.Join(cfg.Dir, "acks.jsonl"))
	if err != nil {
		logged.fail("read the ack log: %v", err)
	}
	logged.expect(int64(len(all)) == rep.Acks, "%d acks counted, %d in the log", rep.Acks, len(all))
	clean := rep.check("clients ran cleanly")
	clean.Checked = cfg.Clients
	tr.n.mu.Lock()
	for _, e := range tr.n.errs {
		clean.fail("%v", e) // a panic, an ack log that failed, a query refused
	}
	tr.n.mu.Unlock()
	answered := rep.check("every request answered")
	answered.expect(rep.Unresolved == 0, "%d requests got no definitive answer within %v: %v", rep.Unresolved, cfg.RequestBudget, tr.n.lost)
	runs := reconcileAtEnd(ctx, rep, rc, all, cfg.Dir, kr)

	idle := rep.check("engine drained")
	idle.Checked = 1
	drainBegan := time.Now()
	if err := drain(ctx, v, all, cfg.DrainTimeout); err != nil {
		idle.fail("%v", err)
	} else if err := caughtUp(ctx, engs, time.Minute); err != nil {
		idle.fail("%v", err)
	}
	rep.Drain = time.Since(drainBegan)
	resendAll(ctx, rep, cfg, conns[:cfg.Clients], all)
	f, err := readStream(ctx, conns[cfg.Clients])
	if err != nil {
		rep.check("event stream read").fail("%v", err)
		rep.finish()
		return rep, fmt.Errorf("%w: %v", ErrChecksFailed, err)
	}
	rep.StreamLastSeq, rep.Commits = uint64(f.lastSeq), f.commits
	verify(ctx, rep, v, all, f)
	checkRunsRecorded(rep, runs, f)
	checkReplay(ctx, rep, cfg.Binary, eng.URL(), eng.Seed(auth.Auditor), cfg.Dir, uint64(f.lastSeq))

	// The instances that joined stop first: then 'audit verify' compares
	// each one's read-model file, and last the first's, which answers alone.
	shutdown := rep.check("clean shutdown")
	for i := len(engs) - 1; i >= 0; i-- {
		e := engs[i]
		if i > 0 {
			shutdown.expect(e.Stop(45*time.Second) == nil, "%s: bankbook serve after SIGTERM did not exit cleanly (see its log)", e.name)
			checkAuditVerify(ctx, rep, "audit verify clean, "+e.name, cfg.Binary, eng.URL(), eng.Seed(auth.Auditor), "--data-dir", e.DataDir())
			continue
		}
		checkAuditVerify(ctx, rep, "audit verify clean", cfg.Binary, eng.URL(), eng.Seed(auth.Auditor))
		err := e.Stop(45 * time.Second)
		shutdown.expect(err == nil, "%s: bankbook serve after SIGTERM: %v", e.name, err)
	}
	races := rep.check("no data races in the engine")
	for _, e := range engs {
		races.Checked += e.Starts()
		if n, first := e.LogCount("WARNING: DATA RACE"); n > 0 {
			races.fail("%s reports %d data races (an engine built with -race), the first at line %d", filepath.Base(e.LogPath()), n, first)
		}
	}
	rep.finish()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if !rep.OK() {
		return rep, fmt.Errorf("%w: %v", ErrChecksFailed, rep.Failed())
	}
	return rep, nil
}

// killCycles kills the engine with SIGKILL every MinUp–MaxUp while the
// clients run, and restarts it on the same data directory, until Cycles
// kills or MaxDuration. At the kill halfway through, the killed
// instance's read-model file is removed too, as with a lost disk: it
// restarts with a rebuild. An engine that ends on its own is restarted and
// counted; one that does not come back ends the run. onKill is told the
// number of kills after each, once the engine is ready again. Once the
// engine has been up MinUp, a delay sent on aims kills it that long after
// instead (to land a kill on a request the sender is about to make).
// With several instances each kill picks one (each is killed at least
// once, given enough cycles); after a kill of the first,
// whose process holds the NATS server, the others must be ready again too.
func killCycles(ctx context.Context, cfg Config, engs []*engineProc, rep *Report, c *Check, log zerolog.Logger, onKill func(kills int), aims <-chan time.Duration) error {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x50a4))
	deadline := time.Now().Add(cfg.MaxDuration)
	kills := rep.check("kills done")
	defer func() {
		kills.expect(rep.Kills == cfg.Cycles, "%d of %d kills within %v", rep.Kills, cfg.Cycles, cfg.MaxDuration)
		kills.expect(rep.UnexpectedExits == 0, "the engine ended on its own %d times (see the engine logs)", rep.UnexpectedExits)
	}()
	ended := map[*engineProc]int{} // kills and unexpected exits, by instance
	lose := max(1, cfg.Cycles/2)   // the kill after which the read models are lost
	for rep.Kills < cfg.Cycles && time.Now().Before(deadline) {
		up := cfg.MinUp + time.Duration(rng.Int64N(int64(cfg.MaxUp-cfg.MinUp)+1))
		victim := engs[rng.IntN(len(engs))]
		var spared []*engineProc // every instance is killed at least once
		for _, e := range engs {
			if ended[e] == 0 {
				spared = append(spared, e)
			}
		}
		if len(spared) > 0 && len(spared) >= cfg.Cycles-rep.Kills {
			victim = spared[0]
		}
		e, err := killAfter(ctx, engs, victim, rep, log, up, cfg.MinUp, aims)
		if err != nil {
			return err
		}
		ended[e]++
		if rep.Kills == lose && rep.LostReadModels == "" {
			// The disk of the read models is lost with the process: they
			// are rebuilt from the stream while the clients go on.
			if err := os.Remove(filepath.Join(e.DataDir(), "readmodels.db")); err != nil {
				c.fail("kill %d: remove the read models of %s: %v", rep.Kills, e.name, err)
			} else {
				rep.LostReadModels = fmt.Sprintf("%s's read-model file removed at kill %d", e.name, rep.Kills)
			}
		}
		began := time.Now()
		if err := e.start(); err != nil {
			c.fail("restart %d: %v", rep.Kills, err)
			return err
		}
		for _, other := range engs {
			if other != e && e != engs[0] {
				continue // the NATS server stayed up: the others did not notice
			}
			err := other.waitReady(ctx, cfg.ReadyTimeout)
			c.expect(err == nil, "%s ready again after kill %d (of %s): %v", other.name, rep.Kills, e.name, err)
			if err != nil {
				return err
			}
		}
		took := time.Since(began)
		rep.Recovery += took
		rep.MaxRecovery = max(rep.MaxRecovery, took)
		log.Info().Int("kill", rep.Kills).Str("ready_after", took.Round(time.Millisecond).String()).Msg("soak: killed and restarted")
		onKill(rep.Kills)
	}
	c.Note = fmt.Sprintf("ready again after each kill, %s at most", rep.MaxRecovery.Round(time.Millisecond))
	if rep.LostReadModels != "" {
		c.Note += "; " + rep.LostReadModels + ", rebuilt"
	}
	if len(engs) > 1 {
		var parts []string
		for _, e := range engs {
			parts = append(parts, fmt.Sprintf("%s %d", e.name, ended[e]))
		}
		c.Note += "; ended: " + strings.Join(parts, ", ")
	}
	return nil
}

// killAfter kills victim after up, or as aimed (killCycles), and counts
// the kill; or, if an instance ends on its own first, counts that. It
// returns the instance that ended.
func killAfter(ctx context.Context, engs []*engineProc, victim *engineProc, rep *Report, log zerolog.Logger, up, minUp time.Duration, aims <-chan time.Duration) (*engineProc, error) {
	timer, armed := time.NewTimer(up), time.NewTimer(minUp)
	defer timer.Stop()
	defer armed.Stop()
	exited := make(chan *engineProc, len(engs))
	for _, e := range engs {
		go func(done <-chan struct{}) {
			<-done
			exited <- e
		}(e.Exited())
	}
	var aimed <-chan time.Duration // nil until the engine has been up minUp
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-exited:
			rep.UnexpectedExits++
			log.Warn().Int("exits", rep.UnexpectedExits).Str("instance", e.name).Msg("soak: the engine ended on its own; restarting it")
			return e, nil
		case <-armed.C:
			aimed = aims
			continue
		case d := <-aimed:
			time.Sleep(d)
		case <-timer.C:
		}
		if err := victim.Kill(); err != nil {
			return nil, err
		}
		rep.Kills++
		rep.kills = append(rep.kills, time.Now())
		return victim, nil
	}
}

// waitGroup waits for wg at most d.
func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// collect copies the counters into the report.
func (c *counters) collect(rep *Report) {
	rep.Requests, rep.Acks, rep.Refusals = c.requests.Load(), c.acks.Load(), c.refusals.Load()
	rep.Repeats, rep.Unresolved, rep.SimUnknown = c.repeats.Load(), c.unresolved.Load(), c.simUnknown.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	rep.Retries = map[string]int64{}
	for k, n := range c.retries {
		rep.Retries[k] = n
	}
}

# bankbook — every CI step is a target here; .ci/run calls `make test`.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin/bankbook

.PHONY: all build run test unit lint chromium fmt bench bench-engine bench-bills bench-limiter bench-replay soak clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/bankbook

## run: start the engine (embedded JetStream on 127.0.0.1:4222, data under ./data) with the simulated bank,
## scanned every 2s, and the fake chat provider (5 messages a second) on 127.0.0.1:8091
run: build
	./$(BIN) serve --data-dir ./data --bank-sim --scan-interval 2s --cancel-window 1m --chat-sim --chat-sim-listen 127.0.0.1:8091

## test: formatting, vet, staticcheck, then every test with the race detector (the console's browser
## tests need Chromium: installed here when missing; screenshots land in test-artifacts/console)
test: lint chromium unit

## chromium: Debian's chromium (and a Korean font, for the screenshots) for the console's browser
## tests, installed with apt-get when missing and this runs as root; otherwise it says how (the
## browser tests then fail and say so too)
BROWSER_PKGS := chromium fonts-nanum
chromium:
	@if { command -v chromium >/dev/null 2>&1 || [ -n "$$BANKBOOK_CHROMIUM" ]; } && [ -d /usr/share/fonts/truetype/nanum ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(BROWSER_PKGS) for the browser tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; }; \
	else \
	  echo "for the browser tests run 'apt-get install $(BROWSER_PKGS)' as root, or set BANKBOOK_CHROMIUM to a Chromium or Chrome binary"; \
	fi

## unit: on failure the race reports (if any) are printed again last, so a truncated log still shows them
unit:
	@out=$$(mktemp); \
	{ $(GO) test -race -count=1 -timeout 20m ./... 2>&1; echo $$? > $$out.rc; } | tee $$out; status=$$(cat $$out.rc); \
	if [ $$status -ne 0 ] && grep -q 'WARNING: DATA RACE' $$out; then \
	  echo '--- race reports (repeated) ---'; \
	  awk '/WARNING: DATA RACE/{p=1;n=0} p{print; n++} /^==================$$/{if(n>1)p=0}' $$out | grep -v '^\s*$$' | head -n 150; \
	fi; rm -f $$out $$out.rc; exit $$status

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the engine-core benchmarks of docs/performance.md (minutes; not part of test)
bench:
	$(GO) test -run '^$$' -bench '^Benchmark(Append|Commit|Load|Submit)$$' -benchtime 2000x -timeout 60m ./eventstore/ ./server/

## bench-engine: 'bankbook bench', the performance table of docs/performance.md: a separate engine
## process per durability profile driven over TCP by 1, 16 and 64 clients, each issue-13 target beside
## a raw JetStream publish on the same server in the same run, then memory, replay and bank scan (about 9 minutes on 2 vCPUs).
## BENCH_FLAGS="--rounds 5 --pprof-dir ./bench-pprof -v" to adjust.
bench-engine: build
	./$(BIN) bench $(BENCH_FLAGS)

## bench-bills: the bills benchmarks of docs/performance.md ("Bills"; a minute or more each)
bench-bills:
	$(GO) test -run '^$$' -bench '^Benchmark(BillIssueBulk|StorePaymentScan)$$' -benchtime 1x -timeout 60m ./server/
	$(GO) test -run '^$$' -bench '^BenchmarkLinkLoad$$' -benchtime 3s ./commands/

## bench-limiter: the shared notification limiter's CAS contention curve, its 60s three-process
## utilisation run, and 200 bills notified by two engine processes (docs/performance.md "Notifications").
## BANKBOOK_LIMITER_SECONDS and _RATE adjust the utilisation run.
bench-limiter:
	$(GO) test -run '^$$' -bench '^BenchmarkReserve$$' -benchtime 3s -timeout 30m ./ratelimit/
	BANKBOOK_LIMITER_SECONDS=$${BANKBOOK_LIMITER_SECONDS:-60} $(GO) test -run '^$$' -bench '^BenchmarkLimiterUtilisation$$' -benchtime 1x -timeout 30m ./ratelimit/
	$(GO) test -run '^$$' -bench '^BenchmarkBulkIssueOverTwoProcesses$$' -benchtime 1x -timeout 30m ./notify/

## bench-replay: replay and audit verify beside a raw ordered-consumer read of the same stream
## (docs/performance.md "Replay and audit verify"; BANKBOOK_REPLAY_EVENTS / BANKBOOK_VERIFY_EVENTS=1000000 for 1M)
bench-replay:
	$(GO) test -run '^$$' -bench '^BenchmarkReplay$$' -benchtime 1x -timeout 60m ./projections/
	$(GO) test -run '^$$' -bench '^BenchmarkAuditVerify$$' -benchtime 1x -timeout 60m ./audit/

## soak: the kill -9 reliability run (docs/operations.md): 24 clients, 20 SIGKILL cycles of a
## separate engine process, then nothing lost or duplicated, books balanced, replay equal to
## live. Minutes; not part of test (a 3-cycle smoke is). SOAK_FLAGS="-cycles 5 -v" to adjust.
soak: build
	$(GO) build -o bin/bankbook-soak ./cmd/bankbook-soak
	./bin/bankbook-soak -bin $(BIN) $(SOAK_FLAGS)

clean:
	rm -rf bin

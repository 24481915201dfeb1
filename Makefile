# bankbook — every CI step is a target here; .ci/run calls `make test`.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin/bankbook

.PHONY: all build run test unit lint fmt bench bench-bills bench-limiter bench-replay soak clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/bankbook

## run: start the engine (embedded JetStream on 127.0.0.1:4222, data under ./data) with the simulated bank,
## scanned every 2s, and the fake chat provider (5 messages a second) on 127.0.0.1:8091
run: build
	./$(BIN) serve --data-dir ./data --bank-sim --scan-interval 2s --cancel-window 1m --chat-sim --chat-sim-listen 127.0.0.1:8091

## test: formatting, vet, staticcheck, then every test with the race detector
test: lint unit

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

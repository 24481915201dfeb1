# bankbook — every CI step is a target here; .ci/run calls `make test`.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin/bankbook

.PHONY: all build run test unit lint fmt bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/bankbook

## run: start the engine (embedded JetStream on 127.0.0.1:4222, data under ./data) with the simulated bank, scanned every 2s
run: build
	./$(BIN) serve --data-dir ./data --bank-sim --scan-interval 2s --cancel-window 1m

## test: formatting, vet, staticcheck, then every test with the race detector
test: lint unit

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the benchmarks of docs/performance.md (minutes; not part of test)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2000x -timeout 60m ./eventstore/ ./server/

clean:
	rm -rf bin

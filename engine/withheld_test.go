package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// /readyz answers anyone who reaches the HTTP listener, so it names what
// fails without a third party's own words: a bank provider's error page
// may name an account holder. The log keeps them.
func TestReadyzDoesNotShowAProvidersAnswer(t *testing.T) {
	const words = "upstream error for holder 김민수 balance 1,000,000"
	bank := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, words, http.StatusBadGateway)
	}))
	defer bank.Close()
	cfg := testConfig(t)
	cfg.BankURL, cfg.BankToken, cfg.ScanInterval = bank.URL, "token", engine.Duration(100*time.Millisecond)
	logs := &testenv.SyncBuffer{}
	e, err := engine.Start(context.Background(), cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	testenv.CheckFor(t, 60*time.Second, func() error {
		resp, err := http.Get("http://" + e.HTTPAddr().String() + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "bank scans in a row failed") {
			return fmt.Errorf("/readyz %d: %s", resp.StatusCode, b)
		}
		if strings.Contains(string(b), "김민수") {
			t.Fatalf("/readyz shows the provider's answer: %s", b)
		}
		if !strings.Contains(string(b), "502") {
			t.Fatalf("/readyz does not say what the provider answered: %s", b)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "김민수") {
		t.Errorf("the log does not keep the provider's answer:\n%s", logs.String())
	}
}

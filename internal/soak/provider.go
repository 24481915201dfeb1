package soak

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/internal/engineproc"
	"github.com/bankbook/bankbook/ops"
)

// provider is the firm-banking provider the engines pay out through: the
// fake of package firmbanking, as the engine's own simulated one is
// configured (fee 500, settled after 2 s, payouts to failingAccount fail),
// but running in the run's process. It outlives every kill of the
// engine, as a real provider does: a payout it took is known to it after
// a restart, and a check of a payout against it (a reactor handed its
// commit again, a webhook) never meets a provider that forgot.
type provider struct {
	fake *firmbanking.FakeService
	url  string
	// tokenFile holds the bearer token, secretFile the secret its
	// webhooks are signed with; both go to every instance.
	tokenFile, secretFile string
	secret                string
	srv                   *http.Server
	// stop ends the webhooks' delivery, which closes done.
	stop context.CancelFunc
	done chan struct{}
}

// Timings and fees of the provider, as serve's simulated one has them.
const (
	providerFee    = 500
	providerSettle = 2 * time.Second
)

// newProvider starts the provider on a free loopback port, its token and
// webhook secret written into dir.
func newProvider(dir string) (*provider, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	p := &provider{tokenFile: filepath.Join(dir, "firmbank.token"), secretFile: filepath.Join(dir, "firmbank.secret"), secret: hex.EncodeToString(secret)}
	if err := os.WriteFile(p.tokenFile, []byte("sim\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.secretFile, []byte(p.secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := engineproc.FreePort()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("firm-banking provider: %w", err)
	}
	p.fake = firmbanking.NewFakeService(firmbanking.FakeOptions{Token: "sim", Fee: providerFee, SettleAfter: providerSettle,
		FailAccounts: []string{failingAccount.Number}})
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p.fake.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// args are the flags that give an instance the provider.
func (p *provider) args() []string {
	return []string{"--firmbank-url", p.url, "--firmbank-token-file", p.tokenFile, "--firmbank-webhook-secret-file", p.secretFile}
}

// hooks posts the provider's webhooks, once a second, to the instance
// serving HTTP at addr (delivered again later while it is down), until
// close.
func (p *provider) hooks(addr string) {
	p.fake.SetWebhook("http://"+addr+ops.WebhooksPath+"firmbank", p.secret)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		p.fake.RunWebhooks(ctx, time.Second)
	}()
}

// close stops the webhooks and the server.
func (p *provider) close() error {
	if p.stop != nil {
		p.stop()
		<-p.done
	}
	err := p.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

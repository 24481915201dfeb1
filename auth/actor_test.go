package auth_test

import (
	"errors"
	"testing"

	"github.com/bankbook/bankbook/auth"
)

func TestActorIsTheAccountInTheSubject(t *testing.T) {
	for _, tc := range []struct {
		subject, tenant, want string
	}{
		{auth.FromSubject("app", "bankbook.cmd.order.submit"), "", "app"},
		{auth.FromSubject("kim", "bankbook.cmd.deposit.resolve"), "", "kim"},
		{auth.FromSubject("ENGINE", "bankbook.cmd.order.submit"), "", "engine"},
		{auth.FromSubject("acme_app", "bankbook.cmd.order.submit"), "acme", "app"},
		{auth.FromSubject("acme_ENGINE", "bankbook.cmd.order.submit"), "acme", "engine"},
		// An account without this tenant's prefix is another tenant's.
		{auth.FromSubject("bolt_app", "bankbook.cmd.order.submit"), "acme", ""},
		{auth.FromSubject("app", "bankbook.cmd.order.submit"), "acme", ""},
		// Names the engine records for its own work.
		{auth.FromSubject("timer", "bankbook.cmd.order.cancel"), "", ""},
		{auth.FromSubject("acme_scanner", "bankbook.cmd.deposit.record"), "acme", ""},
		{auth.FromSubject("webhook", "bankbook.cmd.payout.resolve"), "", ""},
		// Not a mapped command.
		{"bankbook.cmd.order.submit", "", ""},
		{"bankbook.from.app.q.order.get", "", ""},
		{"bankbook.from..cmd.order.submit", "", ""},
		{"bankbook.from.app", "", ""},
	} {
		got, err := auth.Actor(tc.subject, tc.tenant)
		if tc.want == "" {
			if !errors.Is(err, auth.ErrNotFromAnIdentity) {
				t.Errorf("Actor(%q, %q) = %q, %v; want ErrNotFromAnIdentity", tc.subject, tc.tenant, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Actor(%q, %q) = %q, %v; want %q", tc.subject, tc.tenant, got, err, tc.want)
		}
	}
}

func TestAccountOf(t *testing.T) {
	for subject, want := range map[string]string{
		auth.FromSubject("app", "bankbook.cmd.order.submit"):  "app",
		auth.FromSubject("acme_feed", "bankbook.q.order.get"): "acme_feed",
		auth.FromSubject("kim", "bankbook.sim.bank.transfer"): "kim",
		"bankbook.cmd.order.submit":                           "",
		"bankbook.from.app":                                   "",
		"$SRV.PING.bankbook":                                  "",
	} {
		if got := auth.AccountOf(subject); got != want {
			t.Errorf("AccountOf(%q) = %q, want %q", subject, got, want)
		}
	}
}

// TenantOfEngineAccount is Account's inverse for engine identities, and
// names no tenant for any other account.
func TestTenantOfEngineAccount(t *testing.T) {
	for _, tenant := range []string{"", "acme", "b2"} {
		got, ok := auth.TenantOfEngineAccount(auth.Account(tenant, auth.Identity{Role: auth.Engine}))
		if !ok || got != tenant {
			t.Errorf("tenant %q: got %q, %v", tenant, got, ok)
		}
	}
	for _, account := range []string{"acme_app", "$G", "_ENGINE", "Acme_ENGINE", "acme_ENGINE_ENGINE", "ADSBU5Y6DUMGFQ3ZRLLBQLEP5FZAPAQ5E3MULS3AJLMTSODHLKN3SBL4"} {
		if got, ok := auth.TenantOfEngineAccount(account); ok {
			t.Errorf("%s: tenant %q, want none", account, got)
		}
	}
}

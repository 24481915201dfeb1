package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
)

// requestPayout records payout id of 800 from u's wallet.
func (u *unit) requestPayout(t *testing.T, id domain.PayoutID) {
	t.Helper()
	req := domain.PayoutRequested{PayoutID: id, Amount: 800, To: domain.BankAccount{Bank: "KB", Number: "2", Holder: "h"}, PayFrom: collect.Number,
		Source: domain.PayoutFromWallet, SourceID: "u", FromAccount: domain.AccountWallet("u"), RequestedAt: u.clock.Now()}
	if _, err := u.Payouts.Request(context.Background(), commands.Meta{}, req); err != nil {
		t.Fatalf("request %s: %v", id, err)
	}
}

// TestOperatorResolvesAPayoutOnce: given a payout (requested, or with a
// result already), when an operator records a result, then a requested
// payout takes it, a repeat of the result it has writes nothing and
// answers its status, and the other result is refused: the first final
// result stands, so the money cannot be both sent and returned.
func TestOperatorResolvesAPayoutOnce(t *testing.T) {
	settle := api.ResolvePayoutRequest{PayoutID: "po-1", Outcome: "settled", Fee: 50, ProviderRef: "fb-7", Reason: "provider statement"}
	fail := api.ResolvePayoutRequest{PayoutID: "po-1", Outcome: "failed", Reason: "  provider says not sent  "}
	forced := fail
	forced.Force = true
	providerSettled := domain.PayoutSettled{PayoutID: "po-1", Amount: 800, Fee: 30, BankAccount: collect.Number}
	providerFailed := domain.PayoutFailed{PayoutID: "po-1", Reason: "account closed"}
	tests := []struct {
		name        string
		request     bool         // the payout was requested
		given       domain.Event // the provider's result before, if any
		when        api.ResolvePayoutRequest
		wantErr     error
		wantStatus  domain.PayoutStatus // as recorded after
		wantWritten bool                // the resolve writes the result (else the payout has it)
		wantEvent   string              // the event written, as JSON
		wantCommits int
	}{
		{name: "settled", request: true, when: settle, wantStatus: domain.PayoutSettledStatus, wantWritten: true,
			wantEvent: `{"payout_id":"po-1","amount":800,"fee":50,"bank_account":"100-200","provider_ref":"fb-7","settled_at":"2025-05-01T10:00:00Z","source":"wallet","source_id":"u"}`, wantCommits: 2},
		{name: "failed, the reason trimmed", request: true, when: fail, wantStatus: domain.PayoutFailedStatus, wantWritten: true,
			wantEvent: `{"payout_id":"po-1","reason":"operator: provider says not sent","failed_at":"2025-05-01T10:00:00Z"}`, wantCommits: 2},
		{name: "failed by force", request: true, when: forced, wantStatus: domain.PayoutFailedStatus, wantWritten: true,
			wantEvent: `{"payout_id":"po-1","reason":"operator (forced): provider says not sent","failed_at":"2025-05-01T10:00:00Z"}`, wantCommits: 2},
		{name: "settled again", request: true, given: providerSettled, when: settle, wantStatus: domain.PayoutSettledStatus, wantCommits: 2},
		{name: "failed again", request: true, given: providerFailed, when: fail, wantStatus: domain.PayoutFailedStatus, wantCommits: 2},
		{name: "failed after settled", request: true, given: providerSettled, when: fail, wantErr: domain.ErrPayoutFinal, wantStatus: domain.PayoutSettledStatus, wantCommits: 2},
		{name: "failed by force after settled", request: true, given: providerSettled, when: forced, wantErr: domain.ErrPayoutFinal, wantStatus: domain.PayoutSettledStatus, wantCommits: 2},
		{name: "settled after failed", request: true, given: providerFailed, when: settle, wantErr: domain.ErrPayoutFinal, wantStatus: domain.PayoutFailedStatus, wantCommits: 2},
		{name: "an unknown payout", when: settle, wantErr: domain.ErrPayoutNotFound, wantCommits: 0},
		{name: "no reason", request: true, when: api.ResolvePayoutRequest{PayoutID: "po-1", Outcome: "failed", Reason: " "},
			wantErr: domain.ErrInvalidInput, wantStatus: domain.PayoutRequestedStatus, wantCommits: 1},
		{name: "a fee on a failure", request: true, when: api.ResolvePayoutRequest{PayoutID: "po-1", Outcome: "failed", Fee: 50, Reason: "x"},
			wantErr: domain.ErrInvalidInput, wantStatus: domain.PayoutRequestedStatus, wantCommits: 1},
		{name: "a negative fee", request: true, when: api.ResolvePayoutRequest{PayoutID: "po-1", Outcome: "settled", Fee: -1, Reason: "x"},
			wantErr: domain.ErrInvalidInput, wantStatus: domain.PayoutRequestedStatus, wantCommits: 1},
		{name: "an outcome that is no result", request: true, when: api.ResolvePayoutRequest{PayoutID: "po-1", Outcome: "requested", Reason: "x"},
			wantErr: domain.ErrInvalidInput, wantStatus: domain.PayoutRequestedStatus, wantCommits: 1},
	}
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u := newUnit(t, es)
				ctx := context.Background()
				id := domain.PayoutID(fmt.Sprint("po-", i)) // each case its own payout: the store is shared
				if tt.request {
					u.requestPayout(t, id)
				}
				if tt.given != nil {
					var result domain.Event
					switch g := tt.given.(type) {
					case domain.PayoutSettled:
						g.PayoutID, g.SettledAt = id, u.clock.Now()
						result = g
					case domain.PayoutFailed:
						g.PayoutID, g.FailedAt = id, u.clock.Now()
						result = g
					}
					if _, err := u.Payouts.RecordResult(ctx, commands.Meta{}, id, result); err != nil {
						t.Fatal(err)
					}
				}
				req := tt.when
				req.PayoutID = string(id)
				rep, err := u.Payouts.Resolve(ctx, commands.Meta{Actor: "ops"}, req)
				switch {
				case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
					t.Fatalf("resolve: %+v %v, want %v", rep, err, tt.wantErr)
				case tt.wantErr == nil && err != nil:
					t.Fatalf("resolve: %v", err)
				case tt.wantErr == nil && (rep.PayoutID != string(id) || rep.Status != string(tt.wantStatus)):
					t.Fatalf("resolve: %+v, want %s", rep, tt.wantStatus)
				}
				p, err := u.Payouts.Get(ctx, id)
				if err != nil || p.Status != tt.wantStatus {
					t.Fatalf("payout as recorded: %+v %v, want status %q", p, err, tt.wantStatus)
				}
				commits := u.commits(t, domain.AggregatePayout, string(id))
				if len(commits) != tt.wantCommits {
					t.Fatalf("%d payout commits, want %d", len(commits), tt.wantCommits)
				}
				if tt.wantErr != nil {
					return
				}
				// A repeat answers the commit that gave the payout its result.
				last := commits[len(commits)-1]
				if rep.Seq != api.Seq(last.Seq) {
					t.Errorf("reply seq %d, the result's commit %d", rep.Seq, last.Seq)
				}
				if !tt.wantWritten {
					return
				}
				var got, want map[string]any
				if err := json.Unmarshal(last.Events[0].Data, &got); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal([]byte(tt.wantEvent), &want); err != nil {
					t.Fatal(err)
				}
				want["payout_id"] = string(id)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("event %s\n got %v\nwant %v", last.Events[0].EventType, got, want)
				}
			})
		}
	})
}

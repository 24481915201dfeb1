package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
)

// userInfoSubject is the NATS server's system service that tells a
// connection which user and account it is.
const userInfoSubject = "$SYS.REQ.USER.INFO"

// userInfoTimeout bounds the question.
const userInfoTimeout = 5 * time.Second

// ErrWrongAccount is an engine whose identity the NATS server puts in
// another account than its tenant's engine account: another tenant's
// engine seed, or a --tenant misspelt or left out. Such an engine would
// serve that account's stream and queue group, and answer its clients'
// commands 403 forbidden (their accounts lack the prefix it strips), or
// record them under the account's full name. Waiting does not mend it.
var ErrWrongAccount = errors.New("the engine's identity is not in its tenant's engine account")

// checkAccount asks the NATS server which account nc is in and returns it.
// An account that is a tenant's engine account (auth.TenantOfEngineAccount)
// must be tenant's; with a tenant, the account must be that tenant's
// engine account. A deployment of one business may name its engine
// account otherwise (its own accounts, the global account). A server
// that cannot say (no system account: no responders), or whose
// permissions do not let the engine ask, is not checked, with a warning:
// the engine started there before it asked.
//
// A permission the server refuses stays nc's last error, which start
// reads to tell a refused start from one to make again: nc is not the
// connection start reads it on.
func checkAccount(ctx context.Context, nc *nats.Conn, tenant string, log zerolog.Logger) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, userInfoTimeout)
	defer cancel()
	msg, err := askUserInfo(ctx, nc)
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrPermissionViolation) {
		log.Warn().Err(err).Str("tenant", tenant).Msg("the NATS server does not say which account the engine is in: the engine cannot check that it is its tenant's engine account")
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ask NATS which account the engine is in: %w", err)
	}
	var rep struct {
		Data *struct {
			Account     string `json:"account"`
			AccountName string `json:"account_name"`
		} `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return "", fmt.Errorf("ask NATS which account the engine is in: %w", err)
	}
	if rep.Error != nil || rep.Data == nil {
		return "", fmt.Errorf("ask NATS which account the engine is in: answered %s", msg.Data)
	}
	account := rep.Data.AccountName // a JWT account's name, or the configured one
	if account == "" {
		account = rep.Data.Account
	}
	owner, isEngine := auth.TenantOfEngineAccount(account)
	if isEngine && owner == tenant || !isEngine && tenant == "" {
		return account, nil
	}
	fix := "give it the engine seed of " + tenantName(tenant)
	if isEngine {
		fix = "start it " + tenantFlag(owner)
		if tenant != "" {
			fix += ", or " + "give it the engine seed of " + tenantName(tenant)
		}
		return "", fmt.Errorf("%w: the NATS server put it in account %s, the engine account of %s, not of %s: %s",
			ErrWrongAccount, account, tenantName(owner), tenantName(tenant), fix)
	}
	return "", fmt.Errorf("%w: the NATS server put it in account %s, not %s, the engine account of %s: %s, or --tenant the tenant whose engine seed it is",
		ErrWrongAccount, account, auth.Account(tenant, auth.Identity{Role: auth.Engine}), tenantName(tenant), fix)
}

// askUserInfo asks the server's system service about nc's user. A
// request the engine may not publish is dropped by the server, which says
// so on the connection before it answers a flush: that is the error
// (nats.ErrPermissionViolation), at once rather than at ctx's end. No
// system service is nats.ErrNoResponders.
func askUserInfo(ctx context.Context, nc *nats.Conn) (*nats.Msg, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(userInfoSubject, inbox, nil); err != nil {
		return nil, err
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return nil, err
	}
	if last := nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) && strings.Contains(last.Error(), userInfoSubject) {
		return nil, last
	}
	msg, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, err
	}
	if msg.Header.Get("Status") == "503" && len(msg.Data) == 0 {
		return nil, nats.ErrNoResponders
	}
	return msg, nil
}

// tenantName names tenant in a message.
func tenantName(tenant string) string {
	if tenant == "" {
		return "a deployment of one business (no --tenant)"
	}
	return fmt.Sprintf("tenant %q", tenant)
}

// tenantFlag is how serve is started for tenant.
func tenantFlag(tenant string) string {
	if tenant == "" {
		return "without --tenant"
	}
	return "with --tenant " + tenant
}

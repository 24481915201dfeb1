package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
)

// `audit history TYPE ID` prints an aggregate's events with their
// envelopes, a page at a time or --all; --json prints the reply.
func TestAuditHistoryCommand(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	out, err := cli(t, "order", "submit", url, "--buyer-id", "u-a", "--buyer-name", "김감사", "--amount", "39000", "--json", "--idempotency-key", "cli-audit")
	if err != nil {
		t.Fatal(err)
	}
	var sub api.SubmitOrderReply
	if err := json.Unmarshal([]byte(out), &sub); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "order", "cancel", url, "--order-id", sub.OrderID, "--deposited=false"); err != nil {
		t.Fatal(err)
	}

	out, err = cli(t, "audit", "history", url, "order", sub.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"order " + sub.OrderID, "v1  order.submitted (schema 1)  by operator", "v2  order.cancelled", "idempotency key cli-audit", "commit ", "data {"} {
		if !strings.Contains(out, want) {
			t.Errorf("human output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "more:") {
		t.Errorf("a single page offers more:\n%s", out)
	}

	// Flags after the arguments, one event a page.
	out, err = cli(t, "audit", "history", "order", sub.OrderID, url, "--limit", "1", "--json")
	var page api.AuditHistoryReply
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Events) != 1 || page.NextCursor == "" || page.Events[0].IdempotencyKey != "cli-audit" {
		t.Fatalf("first page: %q %v", out, err)
	}
	out, err = cli(t, "audit", "history", url, "--limit", "1", "--cursor", page.NextCursor, "order", sub.OrderID)
	if err != nil || !strings.Contains(out, "order.cancelled") || strings.Contains(out, "order.submitted") || strings.Contains(out, "more:") {
		t.Fatalf("second page: %q %v", out, err)
	}
	out, err = cli(t, "audit", "history", url, "--all", "--limit", "1", "--json", "order", sub.OrderID)
	var all api.AuditHistoryReply
	if err != nil || json.Unmarshal([]byte(out), &all) != nil || len(all.Events) != 2 || all.NextCursor != "" || all.Events[1].Version != 2 || all.AggregateID != sub.OrderID {
		t.Fatalf("--all --json: %q %v", out, err)
	}
	out, err = cli(t, "audit", "history", url, "--all", "--limit", "1", "order", sub.OrderID)
	if err != nil || strings.Count(out, "order "+sub.OrderID+"\n") != 1 || !strings.Contains(out, "order.submitted") || !strings.Contains(out, "order.cancelled") {
		t.Fatalf("--all: %q %v", out, err)
	}
	if out, err := cli(t, "audit", "history", url, "--nkey", e.SeedFile(auth.Auditor), "order", sub.OrderID); err != nil || !strings.Contains(out, "order.cancelled") {
		t.Fatalf("as the auditor: %q %v", out, err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"the app may not", []string{"audit", "history", url, "--nkey", e.SeedFile(auth.App), "order", sub.OrderID}, exitRefused},
		{"unknown aggregate", []string{"audit", "history", url, "order", "o-never"}, exitNotFound},
		{"unknown type", []string{"audit", "history", url, "bill", "b-1"}, exitUsage},
		{"bad id", []string{"audit", "history", url, "order", "a.b"}, exitUsage},
		{"no id", []string{"audit", "history", url, "order"}, exitUsage},
		{"an argument too many", []string{"audit", "history", url, "order", sub.OrderID, "x"}, exitUsage},
		{"--all with a cursor", []string{"audit", "history", url, "--all", "--cursor", "00", "order", sub.OrderID}, exitUsage},
		{"unknown subcommand", []string{"audit", "verify-everything"}, exitUsage},
		{"no subcommand", []string{"audit"}, exitUsage},
		{"help", []string{"audit", "-h"}, exitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cli(t, tc.args...); exitCode(err) != tc.want {
				t.Fatalf("exit %d, want %d (%v)", exitCode(err), tc.want, err)
			}
		})
	}
}

// The usage of `audit` names every flag of each of its commands, apart from
// the connection and credential flags every client command takes.
func TestAuditUsageNamesEveryFlag(t *testing.T) {
	client, _ := newClientFlagSet("client", io.Discard)
	for _, cmd := range []string{"history", "digest", "verify"} {
		var stderr strings.Builder
		if err := run(context.Background(), []string{"audit", cmd, "-h"}, io.Discard, &stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("audit %s -h: %v", cmd, err)
		}
		line := regexp.MustCompile(`bankbook audit ` + cmd + `\b.*`).FindString(auditUsage())
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(stderr.String(), -1) {
			if name := m[1]; (client.Lookup(name) == nil || name == "json") && !strings.Contains(line, "--"+name) {
				t.Errorf("audit %s takes --%s, which its usage does not name: %q", cmd, name, line)
			}
		}
	}
}

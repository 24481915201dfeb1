package firmbanking

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a webhook's signature:
//
//	Firmbank-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>...]
//
// Each v1 is HMAC-SHA256, keyed with a secret shared with the provider, of
// the decimal t, a '.', and the request body exactly as sent. Several v1
// let a provider sign with an old and a new secret while they rotate.
const SignatureHeader = "Firmbank-Signature"

// DefaultWebhookTolerance is how far a webhook's signed time may be from
// the receiver's clock. A signed webhook replayed later than this is
// refused; one replayed within it only has the provider asked again.
const DefaultWebhookTolerance = 5 * time.Minute

// MinWebhookSecretLen is the shortest webhook secret accepted, in bytes.
const MinWebhookSecretLen = 16

// maxWebhookBody bounds a webhook's body.
const maxWebhookBody = 64 << 10

// maxSignatures bounds the v1 entries checked per webhook.
const maxSignatures = 8

// Webhook event types: a transfer became final.
const (
	EventTransferSettled = "transfer.settled"
	EventTransferFailed  = "transfer.failed"
)

// WebhookEvent is what a provider posts when a transfer becomes final: a
// delayed result, which may come hours after the transfer was sent, more
// than once, and in any order with other transfers' events.
type WebhookEvent struct {
	// EventID is the provider's ID for this event (the same on each
	// delivery of it).
	EventID string `json:"event_id"`
	// Type is EventTransferSettled or EventTransferFailed.
	Type string `json:"type"`
	// CreatedAt is when the transfer became final at the provider.
	CreatedAt time.Time `json:"created_at"`
	// Transfer is the transfer's result, final.
	Transfer Result `json:"transfer"`
}

// Errors of webhooks. Compare with errors.Is.
var (
	// ErrBadSignature means a webhook is not signed with a known secret,
	// or was signed too long ago or ahead (DefaultWebhookTolerance).
	ErrBadSignature = errors.New("firmbanking: webhook signature does not verify")
	// ErrBadWebhook means a signed webhook's body is not a WebhookEvent
	// about a final transfer.
	ErrBadWebhook = errors.New("firmbanking: malformed webhook")
	// ErrResultContradicts means the provider's final result for a
	// transfer is not the one recorded for it: one side needs mending by
	// hand. A receiver answers it 409, which a provider does not retry.
	ErrResultContradicts = errors.New("firmbanking: the provider's result contradicts the recorded one")
)

// SignWebhook is the SignatureHeader value for body, signed at at with
// secret.
func SignWebhook(secret []byte, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// VerifyWebhook checks that header (SignatureHeader's value) signs body
// with one of secrets, at a time within tolerance of now (zero:
// DefaultWebhookTolerance), and decodes body. The error matches
// ErrBadSignature or ErrBadWebhook.
//
// A verified event says only what the provider claims: a receiver that
// records money movements on it should ask the provider (Status), over
// its own authenticated connection, what the transfer's result is.
func VerifyWebhook(secrets [][]byte, header string, body []byte, now time.Time, tolerance time.Duration) (WebhookEvent, error) {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	ts, sigs, err := parseSignature(header)
	if err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	match := false
	for _, secret := range secrets {
		want := webhookMAC(secret, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				match = true
			}
		}
	}
	if !match {
		return WebhookEvent{}, fmt.Errorf("%w: no signature matches a known secret", ErrBadSignature)
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // parseSignature checked it
	if at := time.Unix(sec, 0); at.Before(now.Add(-tolerance)) || at.After(now.Add(tolerance)) {
		return WebhookEvent{}, fmt.Errorf("%w: signed at %s, more than %v from now (%s)", ErrBadSignature,
			at.UTC().Format(time.RFC3339), tolerance, now.UTC().Format(time.RFC3339))
	}
	ev, err := decodeWebhook(body)
	if err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrBadWebhook, err)
	}
	return ev, nil
}

// parseSignature splits a SignatureHeader value into its time (decimal
// seconds) and its v1 signatures. Other schemes' entries are ignored.
func parseSignature(header string) (ts string, sigs [][]byte, _ error) {
	if header == "" {
		return "", nil, errors.New("no " + SignatureHeader + " header")
	}
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("entry %q is not key=value", part)
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, errors.New("more than one t")
			}
			if sec, err := strconv.ParseInt(v, 10, 64); err != nil || sec <= 0 {
				return "", nil, fmt.Errorf("t %q is not a positive number of seconds", v)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return "", nil, fmt.Errorf("v1 %q is not a hex HMAC-SHA256", v)
			}
			if len(sigs) == maxSignatures {
				return "", nil, fmt.Errorf("more than %d v1 signatures", maxSignatures)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return "", nil, errors.New("needs t and at least one v1")
	}
	return ts, sigs, nil
}

var eventIDRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// decodeWebhook parses a webhook body and checks it is about a final
// transfer, its type agreeing with the result. Unknown fields are
// ignored: providers add them.
func decodeWebhook(body []byte) (WebhookEvent, error) {
	// created_at is read here, so that a time that is not one is named by
	// its field rather than by encoding/json's layout.
	var in struct {
		EventID   string          `json:"event_id"`
		Type      string          `json:"type"`
		CreatedAt json.RawMessage `json:"created_at"`
		Transfer  Result          `json:"transfer"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return WebhookEvent{}, jsonProblem(err)
	}
	ev := WebhookEvent{EventID: in.EventID, Type: in.Type, Transfer: in.Transfer}
	if len(in.CreatedAt) > 0 && string(in.CreatedAt) != "null" {
		var at string
		if json.Unmarshal(in.CreatedAt, &at) != nil {
			return WebhookEvent{}, errors.New("created_at: must be a JSON string")
		}
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return WebhookEvent{}, fmt.Errorf("created_at: %q is not an RFC 3339 time", at)
		}
		ev.CreatedAt = t
	}
	if !eventIDRE.MatchString(ev.EventID) {
		return WebhookEvent{}, errors.New("event_id must be 1–128 characters of A-Z, a-z, 0-9, '_', '-', '.' and ':'")
	}
	if err := ValidateID(ev.Transfer.ID); err != nil {
		return WebhookEvent{}, fmt.Errorf("transfer: %w", err)
	}
	if err := ev.Transfer.check(ev.Transfer.ID); err != nil {
		return WebhookEvent{}, err
	}
	switch {
	case ev.Type == EventTransferSettled && ev.Transfer.Status == StatusSettled,
		ev.Type == EventTransferFailed && ev.Transfer.Status == StatusFailed:
		return ev, nil
	}
	return WebhookEvent{}, fmt.Errorf("type %q with a %q transfer: only final transfers are told", ev.Type, ev.Transfer.Status)
}

// jsonProblem says what encoding/json found wrong with a webhook's body
// in the provider's terms: the field and the JSON it must be, never the
// engine's Go types.
func jsonProblem(err error) error {
	if typ, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := typ.Field
		if field == "" {
			field = "the body"
		}
		want := "a JSON object"
		switch typ.Type.Kind() {
		case reflect.String:
			want = "a JSON string"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			want = "a JSON number"
		case reflect.Bool:
			want = "true or false"
		case reflect.Slice, reflect.Array:
			want = "a JSON array"
		}
		return fmt.Errorf("%s: must be %s, not %s", field, want, typ.Value)
	}
	if syn, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	}
	return fmt.Errorf("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// WebhookReceiver serves a provider's webhooks: POST with a body of one
// WebhookEvent, signed (SignatureHeader) with one of Secrets. It answers
//
//	200 {"received":true}                 Notify took it (or it needed nothing)
//	400 bad_request                       signed, but not a final transfer's event
//	401 bad_signature                     no valid, timely signature
//	404 unknown_transfer                  Notify does not know the transfer (ErrUnknownTransfer)
//	405 method_not_allowed                not POST
//	409 contradicts                       ErrResultContradicts
//	413 too_large                         a body over 64 KiB
//	500 error                             anything else Notify returned
//	503 pending (Retry-After: 30)         Notify cannot confirm it yet (ErrPending)
//
// Providers deliver again after no answer, a 5xx, 408, 425 or 429, and
// give up on any other answer (409 included).
type WebhookReceiver struct {
	// Secrets are the shared secrets a webhook may be signed with (the
	// current one, and the previous one while they rotate).
	Secrets [][]byte
	// Tolerance bounds the signed time's distance from Now
	// (DefaultWebhookTolerance if zero).
	Tolerance time.Duration
	// Now is the receiver's clock; nil means time.Now.
	Now func() time.Time
	// Notify is given each verified event.
	Notify func(ctx context.Context, ev WebhookEvent) error
	// Observe, if set, is told of each answer: its status and how long
	// the request took.
	Observe func(status int, d time.Duration)
}

func (rc *WebhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	status := rc.serve(w, r)
	if rc.Observe != nil {
		rc.Observe(status, time.Since(began))
	}
}

// serve answers one webhook and returns the status it answered.
func (rc *WebhookReceiver) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return webhookAnswer(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return webhookAnswer(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", maxWebhookBody))
		}
		return webhookAnswer(w, http.StatusBadRequest, "bad_request", "could not read the body")
	}
	now := time.Now
	if rc.Now != nil {
		now = rc.Now
	}
	ev, err := VerifyWebhook(rc.Secrets, r.Header.Get(SignatureHeader), body, now(), rc.Tolerance)
	// The answer says what is wrong, not in which of the engine's
	// packages it was found.
	msg := ""
	if err != nil {
		msg = strings.TrimPrefix(err.Error(), "firmbanking: ")
	}
	switch {
	case errors.Is(err, ErrBadSignature):
		return webhookAnswer(w, http.StatusUnauthorized, "bad_signature", msg)
	case err != nil:
		return webhookAnswer(w, http.StatusBadRequest, "bad_request", msg)
	}
	switch err := rc.Notify(r.Context(), ev); {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"received":true}`+"\n")
		return http.StatusOK
	case errors.Is(err, ErrUnknownTransfer):
		return webhookAnswer(w, http.StatusNotFound, "unknown_transfer", fmt.Sprintf("no transfer %q was sent from here", ev.Transfer.ID))
	case errors.Is(err, ErrResultContradicts):
		return webhookAnswer(w, http.StatusConflict, "contradicts", fmt.Sprintf("transfer %q has another result on record; it is mended by hand", ev.Transfer.ID))
	case errors.Is(err, ErrPending):
		w.Header().Set("Retry-After", "30")
		return webhookAnswer(w, http.StatusServiceUnavailable, "pending", fmt.Sprintf("the result of transfer %q cannot be confirmed yet; deliver it again later", ev.Transfer.ID))
	default:
		return webhookAnswer(w, http.StatusInternalServerError, "error", "the result could not be recorded now; deliver it again")
	}
}

// webhookAnswer writes an error answer and returns its status.
func webhookAnswer(w http.ResponseWriter, status int, code, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(fakeError{Error: code, Message: msg})
	return status
}

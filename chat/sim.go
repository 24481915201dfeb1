package chat

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/retryafter"
	"github.com/bankbook/bankbook/internal/simlimit"
)

// Simulator defaults, used for zero fields of SimConfig.
const (
	DefaultSimRate   = 5
	DefaultSimWindow = time.Second
)

// SimConfig configures a Sim. Zero fields take the defaults documented on
// them.
type SimConfig struct {
	// Rate is how many message sends (POST .../messages) are accepted in
	// any rolling Window; the rest are answered 429. Default DefaultSimRate.
	Rate int
	// Window is the length of the rolling window. Default DefaultSimWindow.
	Window time.Duration
	// Token is the Api-Token every request must carry (401, code 400401,
	// otherwise). Empty accepts any request.
	Token string
	// RequireChannels makes the simulator strict about channels, as the
	// real service is: a send to (or a listing of) a channel never created
	// with POST /v3/group_channels is answered 400, code 400201, and a
	// channel_url to create must have 4 to 100 letters, digits or
	// underscores (400, code 400111). Without it any channel_url is taken,
	// and channels exist when first used.
	RequireChannels bool
	// Latency is how long every send waits before it is processed (a
	// caller that hangs up meanwhile sends nothing). SetLatency changes it.
	Latency time.Duration
	// Log receives a debug line per send and per refusal.
	Log zerolog.Logger
}

func (c SimConfig) withDefaults() SimConfig {
	if c.Rate == 0 {
		c.Rate = DefaultSimRate
	}
	if c.Window == 0 {
		c.Window = DefaultSimWindow
	}
	return c
}

// Validate reports every problem with c (after defaults), each matching
// ErrInvalidConfig.
func (c SimConfig) Validate() error {
	d := c.withDefaults()
	var errs []error
	if d.Rate < 0 {
		errs = append(errs, fmt.Errorf("%w: simulator rate %d must be positive", ErrInvalidConfig, d.Rate))
	}
	if d.Window < 0 {
		errs = append(errs, fmt.Errorf("%w: simulator window %v must be positive", ErrInvalidConfig, d.Window))
	}
	if d.Latency < 0 {
		errs = append(errs, fmt.Errorf("%w: simulator latency %v must not be negative", ErrInvalidConfig, d.Latency))
	}
	if err := validateToken("simulator token", d.Token, false); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SimMessage is a message the simulator accepted. Its JSON form is the one
// of bankbook.sim.chat.messages.
type SimMessage struct {
	// ID is the message_id the simulator gave it (1, 2, ...).
	ID int64 `json:"-"`
	// Channel is the channel_url it was sent to.
	Channel string `json:"channel"`
	// CustomType, Message and Data are as sent (Data is Sendbird's data
	// string: for bankbook, a JSON object with notification_id).
	CustomType string `json:"custom_type"`
	Message    string `json:"message"`
	Data       string `json:"data"`
	// UserID is the sender.
	UserID string `json:"-"`
	// ReceivedAt is when the simulator accepted it: the time its rolling
	// window counted.
	ReceivedAt time.Time `json:"received_at"`
}

// NotificationID is the notification_id of m's data, "" if it has none.
func (m SimMessage) NotificationID() string { return notificationID(m.Data) }

// Sim is a fake chat provider that speaks the part of Sendbird's Platform
// API that the Sendbird adapter uses, and behaves like the real service:
//
//   - POST /v3/group_channels/{channel_url}/messages stores a text message
//     (message_type MESG, user_id and message required, custom_type and
//     data strings) and answers the message object (message_id, created_at
//     in Unix ms, ...). It does not dedupe: a message sent twice is there
//     twice.
//   - At most Rate sends are accepted in any rolling Window (refused sends
//     do not count; sends refused for a bad channel or body do). The rest
//     get HTTP 429 with headers X-RateLimit-RetryAfter (seconds, with
//     milliseconds: "0.165"), Retry-After (whole seconds, rounded up),
//     X-RateLimit-Limit ("5;w=1"), X-RateLimit-Remaining ("0"),
//     X-RateLimit-Reset (seconds until every counted send has left the
//     window) and the body
//     {"error":true,"message":"Too many requests (scope: user, limit: 5;w=1, remaining: 0, retry_after: 0.165s, reset: 0.965s).","code":500910}.
//   - GET /v3/group_channels/{channel_url}/messages lists a channel's
//     messages, oldest first, around message_ts (Unix ms) or message_id,
//     with prev_limit and next_limit (0 to 200, default 15) and include
//     (default true; the reference point counts within next_limit).
//   - POST /v3/group_channels creates a channel ({"channel_url", "name",
//     "user_ids"}); a taken channel_url is answered 400, code 400202.
//
// Every request must carry the Api-Token when SimConfig.Token is set. Only
// sends are rate-limited and subject to the injected faults (FailNext,
// HangNext, Force429, RefuseChannel, SetLatency); SetDown answers every
// request. A Sim is safe for
// concurrent use.
type Sim struct {
	cfg     SimConfig
	limit   *simlimit.Limiter
	now     func() time.Time
	handler http.Handler

	mu           sync.Mutex
	messages     []SimMessage
	byChannel    map[string][]int // indexes into messages
	channels     map[string]bool  // created (RequireChannels)
	refusedChans map[string]bool
	refused      int
	lastAccepted time.Time
	latency      time.Duration
	fail         struct{ n, status int }
	failStored   struct{ n, status int }
	down         int // every request answered this status (SetDown)
	force429     struct {
		n     int
		after time.Duration
	}
	hangAccept, hangDrop struct {
		n int
		d time.Duration
	}
}

// NewSim returns a simulator, or an error matching ErrInvalidConfig.
func NewSim(cfg SimConfig) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sim{
		cfg:          cfg,
		limit:        simlimit.NewRolling(cfg.Rate, cfg.Window),
		now:          time.Now,
		byChannel:    make(map[string][]int),
		channels:     make(map[string]bool),
		refusedChans: make(map[string]bool),
		latency:      cfg.Latency,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/group_channels/{channel_url}/messages", s.sendMessage)
	mux.HandleFunc("GET /v3/group_channels/{channel_url}/messages", s.listMessages)
	mux.HandleFunc("POST /v3/group_channels", s.createChannel)
	s.handler = s.authenticate(mux)
	return s, nil
}

// Handler serves the simulated API at its root.
func (s *Sim) Handler() http.Handler { return s.handler }

// Serve serves the simulator on ln until ctx ends, then shuts down: requests
// in flight (a hung send, say) see their context end, and Serve returns nil
// within a few seconds. Any other end of serving is returned.
func (s *Sim) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-done
	return nil
}

// ListenAndServe listens on addr ("127.0.0.1:8090") and serves until ctx
// ends (see Serve).
func (s *Sim) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("chat simulator: listen on %s: %w", addr, err)
	}
	s.cfg.Log.Info().Str("addr", ln.Addr().String()).Int("rate", s.cfg.Rate).Dur("window", s.cfg.Window).Msg("chat simulator listening")
	return s.Serve(ctx, ln)
}

// Messages returns the messages accepted for channel ("" for all), oldest
// first.
func (s *Sim) Messages(channel string) []SimMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if channel == "" {
		return slices.Clone(s.messages)
	}
	idx := s.byChannel[channel]
	out := make([]SimMessage, len(idx))
	for i, j := range idx {
		out[i] = s.messages[j]
	}
	return out
}

// Refused returns how many sends were answered 429 (by the rolling window
// or Force429).
func (s *Sim) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// FailNext answers the next n sends with status (500, 503 ...) and a
// Sendbird error body (code 500901), without storing them or counting them
// in the window.
func (s *Sim) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail.n, s.fail.status = n, status
}

// FailNextAfterStoring stores each of the next n accepted sends (counted in
// the window) and then answers status (502, 504 ...) with a Sendbird error
// body: a provider that fails after storing a message, or a gateway in
// front of it that gave up waiting, which the caller cannot tell from a
// failure that stored nothing.
func (s *Sim) FailNextAfterStoring(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStored.n, s.failStored.status = n, status
}

// HangNext holds the answer to the next n sends for d, or until the caller
// hangs up. With accept, each is stored (and counted in the window) first:
// the caller times out although the message arrived — the lost answer.
// Without, nothing is stored or counted, and a caller still waiting after d
// gets 504. Holds without accept are applied before holds with it.
func (s *Sim) HangNext(n int, d time.Duration, accept bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if accept {
		s.hangAccept.n, s.hangAccept.d = n, d
	} else {
		s.hangDrop.n, s.hangDrop.d = n, d
	}
}

// Force429 answers the next n sends 429 as the window would, asking to
// retry after retryAfter, whatever the window says. They count in Refused.
func (s *Sim) Force429(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.force429.n, s.force429.after = n, retryAfter
}

// RefuseChannel makes every send to channel fail with 400 (code 400111), a
// permanently failing recipient, until AllowChannel.
func (s *Sim) RefuseChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusedChans[channel] = true
}

// AllowChannel undoes RefuseChannel.
func (s *Sim) AllowChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refusedChans, channel)
}

// SetDown answers every request, sends and message lists alike, with
// status (502, 503 ...) and a gateway's plain-text body, storing nothing:
// the provider down behind a gateway. 0 brings it back.
func (s *Sim) SetDown(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = status
}

// SetLatency makes every send wait d before it is processed.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// simReply is an answer computed before it is written (so it can be held).
type simReply struct {
	status int
	header http.Header
	body   any
}

// simError is Sendbird's error body.
type simError struct {
	Error   bool   `json:"error"`
	Message string `json:"message"`
	Code    int    `json:"code"`
}

func simErr(status, code int, format string, args ...any) simReply {
	return simReply{status: status, body: simError{Error: true, Message: fmt.Sprintf(format, args...), Code: code}}
}

// simMessageOut is the message object the simulator answers.
type simMessageOut struct {
	MessageID  int64      `json:"message_id"`
	Type       string     `json:"type"`
	Message    string     `json:"message"`
	ChannelURL string     `json:"channel_url"`
	CustomType string     `json:"custom_type"`
	Data       string     `json:"data"`
	CreatedAt  int64      `json:"created_at"`
	User       simUserOut `json:"user"`
}

type simUserOut struct {
	UserID string `json:"user_id"`
}

func messageOut(m SimMessage) simMessageOut {
	return simMessageOut{
		MessageID: m.ID, Type: "MESG", Message: m.Message, ChannelURL: m.Channel,
		CustomType: m.CustomType, Data: m.Data, CreatedAt: m.ReceivedAt.UnixMilli(),
		User: simUserOut{UserID: m.UserID},
	}
}

func writeReply(w http.ResponseWriter, rep simReply) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(rep.status)
	_ = json.NewEncoder(w).Encode(rep.body)
}

// wait waits d, or until ctx ends (false).
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Sim) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down != 0 { // the gateway answers before the provider sees the token
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(down)
			_, _ = io.WriteString(w, "<html><body><h1>"+strconv.Itoa(down)+" "+http.StatusText(down)+"</h1></body></html>\n")
			return
		}
		if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Api-Token")), []byte(s.cfg.Token)) != 1 {
			writeReply(w, simErr(http.StatusUnauthorized, CodeInvalidAPIToken, "Invalid value: \"Api-Token\"."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Sim) sendMessage(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel_url")
	// Read the whole body first: that also lets the server notice a caller
	// that hangs up while the answer is held.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeReply(w, simErr(http.StatusBadRequest, CodeInvalidValue, "read body: %v", err))
		return
	}
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if !wait(r.Context(), latency) {
		panic(http.ErrAbortHandler) // no answer at all, not an empty 200
	}
	rep, hang := s.admit(channel, body)
	if hang > 0 && !wait(r.Context(), hang) {
		// The caller hung up, or the server is shutting down: drop the
		// connection unanswered. A stored message stays stored.
		panic(http.ErrAbortHandler)
	}
	writeReply(w, rep)
}

// admit decides a send: injected faults, the rolling window, the channel,
// the body; it stores an accepted message. hang is how long to hold the
// answer.
func (s *Sim) admit(channel string, body []byte) (rep simReply, hang time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	debug := func() *zerolog.Event { return s.cfg.Log.Debug().Str("channel", channel) }
	switch {
	case s.force429.n > 0:
		s.force429.n--
		s.refused++
		debug().Dur("retry_after", s.force429.after).Msg("chat simulator: send refused (forced 429)")
		return s.tooMany(now, s.force429.after), 0
	case s.fail.n > 0:
		s.fail.n--
		debug().Int("status", s.fail.status).Msg("chat simulator: send failed (injected)")
		return simErr(s.fail.status, CodeInternalError, "Internal server error."), 0
	case s.hangDrop.n > 0:
		s.hangDrop.n--
		debug().Dur("hang", s.hangDrop.d).Msg("chat simulator: send held, not stored (injected)")
		return simErr(http.StatusGatewayTimeout, CodeInternalError, "Gateway timeout."), s.hangDrop.d
	}
	if ok, retry := s.limit.Allow(now); !ok {
		s.refused++
		debug().Dur("retry_after", retry).Msg("chat simulator: send refused (rate limit)")
		return s.tooMany(now, retry), 0
	}
	s.lastAccepted = now
	switch {
	case s.refusedChans[channel]:
		debug().Msg("chat simulator: send refused (refused channel)")
		return simErr(http.StatusBadRequest, CodeInvalidValue, "Invalid value: channel %q cannot receive messages.", channel), 0
	case s.cfg.RequireChannels && !s.channels[channel]:
		debug().Msg("chat simulator: send refused (no such channel)")
		return simErr(http.StatusBadRequest, CodeResourceNotFound, "\"Channel\" not found."), 0
	}
	in, err := decodeSimMessage(body)
	if err != nil {
		debug().Err(err).Msg("chat simulator: send refused (bad body)")
		return simErr(http.StatusBadRequest, CodeInvalidValue, "%v", err), 0
	}
	m := SimMessage{
		ID: int64(len(s.messages) + 1), Channel: channel, CustomType: in.CustomType,
		Message: in.Message, Data: in.Data, UserID: in.UserID, ReceivedAt: now,
	}
	s.byChannel[channel] = append(s.byChannel[channel], len(s.messages))
	s.messages = append(s.messages, m)
	s.channels[channel] = true
	debug().Str("custom_type", m.CustomType).Str("notification_id", m.NotificationID()).Int64("message_id", m.ID).Msg("chat simulator: message accepted")
	if s.failStored.n > 0 {
		s.failStored.n--
		debug().Int("status", s.failStored.status).Msg("chat simulator: message stored, send answered with a failure (injected)")
		return simErr(s.failStored.status, CodeInternalError, "Internal server error."), 0
	}
	if s.hangAccept.n > 0 {
		s.hangAccept.n--
		hang = s.hangAccept.d
	}
	return simReply{status: http.StatusOK, header: http.Header{"X-Ratelimit-Limit": {s.limitHeader()}}, body: messageOut(m)}, hang
}

// decodeSimMessage parses a send's body as the real service would.
func decodeSimMessage(body []byte) (sendbirdMessage, error) {
	if len(body) > maxBody {
		return sendbirdMessage{}, fmt.Errorf("body exceeds %d bytes", maxBody)
	}
	var in sendbirdMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return sendbirdMessage{}, fmt.Errorf("invalid JSON body: %v", err)
	}
	switch {
	case in.MessageType != "MESG":
		return sendbirdMessage{}, fmt.Errorf("message_type %q: only MESG is simulated", in.MessageType)
	case in.UserID == "":
		return sendbirdMessage{}, errors.New("\"user_id\" is required")
	case in.Message == "":
		return sendbirdMessage{}, errors.New("\"message\" is required")
	}
	return in, nil
}

// limitHeader is X-RateLimit-Limit: "5;w=1".
func (s *Sim) limitHeader() string {
	return fmt.Sprintf("%d;w=%s", s.cfg.Rate, strconv.FormatFloat(s.cfg.Window.Seconds(), 'f', -1, 64))
}

// tooMany is the 429 answer for a wait of retry. mu is held.
func (s *Sim) tooMany(now time.Time, retry time.Duration) simReply {
	reset := max(retry, s.lastAccepted.Add(s.cfg.Window).Sub(now))
	ra, rs := secs3(retry), secs3(reset)
	return simReply{
		status: http.StatusTooManyRequests,
		header: http.Header{
			"X-Ratelimit-Limit":      {s.limitHeader()},
			"X-Ratelimit-Remaining":  {"0"},
			"X-Ratelimit-Reset":      {rs},
			"X-Ratelimit-Retryafter": {ra},
			"Retry-After":            {retryafter.Format(now, retry, false)},
		},
		body: simError{
			Error: true,
			Message: fmt.Sprintf("Too many requests (scope: user, limit: %s, remaining: 0, retry_after: %ss, reset: %ss).",
				s.limitHeader(), ra, rs),
			Code: CodeRateLimitExceeded,
		},
	}
}

// secs3 writes d in seconds with milliseconds, rounded up: "0.165".
func secs3(d time.Duration) string {
	ms := int64(math.Ceil(float64(max(d, 0)) / float64(time.Millisecond)))
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// listMessages serves GET .../messages.
func (s *Sim) listMessages(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel_url")
	q := r.URL.Query()
	limit := func(name string) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return 15, true
		}
		n, err := strconv.Atoi(v)
		return n, err == nil && n >= 0 && n <= 200
	}
	prev, okPrev := limit("prev_limit")
	next, okNext := limit("next_limit")
	if !okPrev || !okNext {
		writeReply(w, simErr(http.StatusBadRequest, CodeInvalidValue, "prev_limit and next_limit must be from 0 to 200."))
		return
	}
	include := true
	if v := q.Get("include"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeReply(w, simErr(http.StatusBadRequest, CodeInvalidValue, "include must be true or false."))
			return
		}
		include = b
	}
	// The reference point: a time (Unix ms) or a message_id; messages
	// compare by it through key.
	var ref int64
	var key func(SimMessage) int64
	switch ts, id := q.Get("message_ts"), q.Get("message_id"); {
	case ts != "":
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			writeReply(w, simErr(http.StatusBadRequest, CodeInvalidValue, "message_ts must be a Unix time in milliseconds."))
			return
		}
		ref, key = n, func(m SimMessage) int64 { return m.ReceivedAt.UnixMilli() }
	case id != "":
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			writeReply(w, simErr(http.StatusBadRequest, CodeInvalidValue, "message_id must be a number."))
			return
		}
		ref, key = n, func(m SimMessage) int64 { return m.ID }
	default:
		writeReply(w, simErr(http.StatusBadRequest, CodeMissingParameter, "message_ts or message_id is required."))
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.RequireChannels && !s.channels[channel] {
		writeReply(w, simErr(http.StatusBadRequest, CodeResourceNotFound, "\"Channel\" not found."))
		return
	}
	var before, after []simMessageOut
	for _, j := range s.byChannel[channel] {
		m := s.messages[j]
		switch k := key(m); {
		case k < ref:
			before = append(before, messageOut(m))
		case k > ref || include:
			if len(after) < next {
				after = append(after, messageOut(m))
			}
		}
	}
	before = before[max(len(before)-prev, 0):]
	writeReply(w, simReply{status: http.StatusOK, body: struct {
		Messages []simMessageOut `json:"messages"`
	}{append(append([]simMessageOut{}, before...), after...)}})
}

// createChannel serves POST /v3/group_channels.
func (s *Sim) createChannel(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ChannelURL string   `json:"channel_url"`
		Name       string   `json:"name"`
		UserIDs    []string `json:"user_ids"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&in); err != nil {
		writeReply(w, simErr(http.StatusBadRequest, CodeInvalidValue, "invalid JSON body: %v", err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.ChannelURL == "" {
		in.ChannelURL = fmt.Sprintf("sendbird_group_channel_%d", len(s.channels)+1)
	}
	if s.cfg.RequireChannels && !validChannelURL(in.ChannelURL) {
		writeReply(w, simErr(http.StatusBadRequest, CodeInvalidValue,
			"Invalid value: \"channel_url\" (only letters, digits and underscores, 4 to 100 characters)."))
		return
	}
	if s.channels[in.ChannelURL] {
		writeReply(w, simErr(http.StatusBadRequest, CodeResourceAlreadyExists, "\"channel_url\" violates a unique constraint."))
		return
	}
	s.channels[in.ChannelURL] = true
	if in.Name == "" {
		in.Name = "group channel"
	}
	s.cfg.Log.Debug().Str("channel", in.ChannelURL).Msg("chat simulator: channel created")
	writeReply(w, simReply{status: http.StatusOK, body: map[string]any{
		"channel_url": in.ChannelURL, "name": in.Name, "member_count": len(in.UserIDs),
		"created_at": s.now().Unix(),
	}})
}

// validChannelURL is Sendbird's rule for a channel_url to create.
func validChannelURL(u string) bool {
	if len(u) < 4 || len(u) > 100 {
		return false
	}
	return strings.IndexFunc(u, func(c rune) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_')
	}) < 0
}

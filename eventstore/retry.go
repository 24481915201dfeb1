package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/transient"
)

// retry is the store's policy for JetStream requests: each attempt bounded
// by Config.AttemptTimeout, all of them by the caller's deadline (or
// Config.Timeout when there is none).
func (s *Store) retry() transient.Policy {
	return transient.Policy{AttemptTimeout: s.cfg.AttemptTimeout, Budget: s.cfg.Timeout}
}

// getLastMsg reads the last message on subject, retrying transient
// failures; jetstream.ErrMsgNotFound when there is none.
func (s *Store) getLastMsg(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	return transient.Do(ctx, s.retry(), func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		if s.cfg.Replicas > 1 {
			return s.leaderGet(ctx, msgGetRequest{LastFor: subject})
		}
		return s.stream.GetLastMsgForSubject(ctx, subject)
	})
}

// getMsg reads the message at seq, retrying transient failures.
func (s *Store) getMsg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	return transient.Do(ctx, s.retry(), func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		if s.cfg.Replicas > 1 {
			return s.leaderGet(ctx, msgGetRequest{Seq: seq})
		}
		return s.stream.GetMsg(ctx, seq)
	})
}

// msgGetRequest and msgGetResponse are JetStream's message get API
// ($JS.API.STREAM.MSG.GET.<stream>), which the stream leader answers.
type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// leaderGet reads one message from the stream leader. On a replicated
// stream the stream allows direct gets (for auditors, ADR 0006), and
// nats.go would use them, but a follower may answer one before it has
// caught up; a command must not decide on a stale read.
func (s *Store) leaderGet(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	reply, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+s.cfg.Stream, body)
	if err != nil {
		return nil, err
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("message get: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, resp.Error
	}
	if resp.Message == nil {
		return nil, jetstream.ErrInvalidJetStreamResponse
	}
	m := resp.Message
	var hdr nats.Header
	if len(m.Header) > 0 {
		if hdr, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, err
		}
	}
	return &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Sequence, Header: hdr, Data: m.Data, Time: m.Time}, nil
}

// streamInfo reads the stream's state, retrying transient failures.
func (s *Store) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	return transient.Do(ctx, s.retry(), func(ctx context.Context) (*jetstream.StreamInfo, error) {
		return s.stream.Info(ctx)
	})
}

// unavailable marks an error of a request that got no answer, or that the
// stream could not serve for now, as ErrUnavailable (see transient.Is).
func unavailable(err error) error {
	if transient.Is(err) && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

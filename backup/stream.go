package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/client"
)

// The JetStream API subjects used here (nats-server's jetstream_api.go);
// nats.go's jetstream package has no snapshots.
const (
	apiStreamNames = "$JS.API.STREAM.NAMES"
	apiSnapshot    = "$JS.API.STREAM.SNAPSHOT."
	apiRestore     = "$JS.API.STREAM.RESTORE."
)

// chunkSize is the size of the chunks of a snapshot, both ways.
const chunkSize = 128 << 10

// chunkWait bounds the wait for each chunk and each acknowledgement: the
// server gives up on a snapshot whose chunks are not acknowledged within
// about 5 s, and on a restore that gets no chunk for longer.
const chunkWait = 30 * time.Second

// apiError is the error of a JetStream API response.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (JetStream %d, error %d)", e.Description, e.Code, e.ErrCode)
}

// request sends a JetStream API request and decodes its response into out,
// returning the response's error if it has one. A request the NATS server
// refuses for lack of permission fails at once with a 403 *api.Error when
// c came from client.Connect.
func request(ctx context.Context, c *client.Client, subject string, body any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, chunkWait)
	defer cancel()
	rep, err := c.Request(ctx, subject, body, nil)
	if err != nil {
		return err
	}
	return decodeResponse(rep.Data, out)
}

func decodeResponse(data []byte, out any) error {
	var e struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("JetStream API response: %w", err)
	}
	if e.Error != nil {
		return e.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// streamNames lists every stream of the account.
func streamNames(ctx context.Context, c *client.Client) ([]string, error) {
	var names []string
	for {
		var resp struct {
			Total   int      `json:"total"`
			Streams []string `json:"streams"`
		}
		if err := request(ctx, c, apiStreamNames, map[string]int{"offset": len(names)}, &resp); err != nil {
			return nil, fmt.Errorf("list streams: %w", err)
		}
		names = append(names, resp.Streams...)
		if len(resp.Streams) == 0 || len(names) >= resp.Total {
			slices.Sort(names)
			return names, nil
		}
	}
}

// snapshotState is what the backup keeps of a snapshot's stream state.
type snapshotState struct {
	Messages  uint64 `json:"messages"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	Consumers int    `json:"consumer_count"`
}

// snapshotTo writes a snapshot of stream name, consumers included and
// every message's checksum checked by the server first, to path.
func snapshotTo(ctx context.Context, c *client.Client, name, path string) (Stream, error) {
	nc := c.Conn()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Stream{}, err
	}
	defer f.Close()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return Stream{}, err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1) // the server's window bounds what is in flight

	var resp struct {
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	taken := time.Now().UTC()
	err = request(ctx, c, apiSnapshot+name, map[string]any{
		"deliver_subject": inbox, "chunk_size": chunkSize, "jsck": true,
	}, &resp)
	if err != nil {
		return Stream{}, err
	}
	var st snapshotState
	if err := json.Unmarshal(resp.State, &st); err != nil {
		return Stream{}, fmt.Errorf("snapshot state: %w", err)
	}
	restore, err := json.Marshal(map[string]json.RawMessage{"config": resp.Config, "state": resp.State})
	if err != nil {
		return Stream{}, err
	}

	h := sha256.New()
	w := io.MultiWriter(f, h)
	var size int64
	for {
		wctx, cancel := context.WithTimeout(ctx, chunkWait)
		msg, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			return Stream{}, fmt.Errorf("waiting for the snapshot's chunk after %d bytes: %w", size, err)
		}
		// The server ends the chunks with an empty message: with the
		// status 204 (nats.go puts a header's status line in "Status"), or
		// none when the whole snapshot fit in its first chunk, or the
		// status of the error that stopped it.
		if len(msg.Data) == 0 {
			if status := msg.Header.Get("Status"); status != "" && status != "204" {
				return Stream{}, fmt.Errorf("the server ended the snapshot after %d bytes: %s %s", size, status, msg.Header.Get("Description"))
			}
			break
		}
		n, err := w.Write(msg.Data)
		size += int64(n)
		if err != nil {
			return Stream{}, err
		}
		if msg.Reply != "" {
			if err := msg.Respond(nil); err != nil {
				return Stream{}, err
			}
		}
	}
	if err := f.Sync(); err != nil {
		return Stream{}, err
	}
	return Stream{
		Name: name, File: filepath.Base(path), Bytes: size, SHA256: hex.EncodeToString(h.Sum(nil)),
		Messages: st.Messages, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Consumers: st.Consumers,
		TakenAt: taken, Restore: restore,
	}, nil
}

// Restore restores every stream of the backup in dir into the account c
// is connected to, which must hold none of them, in the order they were
// taken. It checks the files against the manifest first, and each
// restored stream's last sequence and message count against the backup's.
// replicas, if not 0, replaces each stream's replica count (a backup of a
// cluster's R3 streams restores into a single server as R1).
func Restore(ctx context.Context, c *client.Client, dir string, replicas int, progress Progress) (Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return Manifest{}, err
	}
	have, err := streamNames(ctx, c)
	if err != nil {
		return Manifest{}, err
	}
	for _, s := range m.Streams {
		if slices.Contains(have, s.Name) {
			return Manifest{}, fmt.Errorf("%w: stream %s exists", ErrNotEmpty, s.Name)
		}
	}
	for _, s := range m.Streams {
		if replicas > 0 {
			var err error
			if s.Restore, err = withReplicas(s.Restore, replicas); err != nil {
				return Manifest{}, fmt.Errorf("%w: stream %s: %v", ErrDamaged, s.Name, err)
			}
		}
		if err := restoreStream(ctx, c, dir, s); err != nil {
			return Manifest{}, fmt.Errorf("restore of stream %s: %w", s.Name, err)
		}
		if progress != nil {
			progress(s)
		}
	}
	return m, nil
}

// withReplicas returns a stream's restore request with n replicas, every
// other field as the server gave it.
func withReplicas(restore json.RawMessage, n int) (json.RawMessage, error) {
	var r map[string]json.RawMessage
	if err := json.Unmarshal(restore, &r); err != nil {
		return nil, err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(r["config"], &cfg); err != nil {
		return nil, err
	}
	cfg["num_replicas"] = json.RawMessage(fmt.Sprint(n))
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	r["config"] = b
	return json.Marshal(r)
}

// mayExpire reports whether a stream's messages can age out (a maximum
// age, or per-message TTLs), from its configuration in the backup.
func mayExpire(restore json.RawMessage) bool {
	var r struct {
		Config struct {
			MaxAge      int64 `json:"max_age"`
			AllowMsgTTL bool  `json:"allow_msg_ttl"`
		} `json:"config"`
	}
	return json.Unmarshal(restore, &r) != nil || r.Config.MaxAge > 0 || r.Config.AllowMsgTTL
}

// ErrNotEmpty means the server to restore into already holds a stream of
// the backup.
var ErrNotEmpty = errors.New("backup: the server is not empty")

func restoreStream(ctx context.Context, c *client.Client, dir string, s Stream) error {
	nc := c.Conn()
	f, err := os.Open(filepath.Join(dir, s.File))
	if err != nil {
		return err
	}
	defer f.Close()
	var start struct {
		DeliverSubject string `json:"deliver_subject"`
	}
	if err := request(ctx, c, apiRestore+s.Name, s.Restore, &start); err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			rctx, cancel := context.WithTimeout(ctx, chunkWait)
			reply, rerr := nc.RequestWithContext(rctx, start.DeliverSubject, buf[:n])
			cancel()
			if rerr != nil {
				return fmt.Errorf("sending a chunk: %w", rerr)
			}
			if len(reply.Data) > 0 {
				if err := decodeResponse(reply.Data, nil); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	// An empty chunk ends the upload; the answer comes once the server has
	// built the stream.
	rctx, cancel := context.WithTimeout(ctx, 10*chunkWait)
	defer cancel()
	reply, err := nc.RequestWithContext(rctx, start.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("finishing: %w", err)
	}
	var done struct {
		State snapshotState `json:"state"`
	}
	if err := decodeResponse(reply.Data, &done); err != nil {
		return err
	}
	// Messages whose age limit or per-message TTL ran out since the backup
	// are gone, as they would be from the live stream; the sequence stays.
	short := done.State.Messages < s.Messages && !mayExpire(s.Restore)
	if done.State.LastSeq != s.LastSeq || done.State.Messages > s.Messages || short {
		return fmt.Errorf("%w: restored %d messages up to seq %d, the backup holds %d up to seq %d", ErrDamaged, done.State.Messages, done.State.LastSeq, s.Messages, s.LastSeq)
	}
	return nil
}

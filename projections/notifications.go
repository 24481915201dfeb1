package projections

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// The "notifications" projection: every notification with its status, in
// the order they were created, listed by status and by recipient, and
// counted by status (bankbook.q.notify.list, the limiter's pending count,
// the bankbook_notifications metric).
var (
	// bucketNotifications maps notification_id to the JSON of a
	// notificationRecord.
	bucketNotifications = []byte("notifications")
	// bucketNotificationIndex lists notifications by status and all
	// together: status 0x00 created_seq(8) notification_id, and the same
	// under "*" for every status → empty.
	bucketNotificationIndex = []byte("notifications_by_status")
	// bucketNotificationRecipients lists each recipient's notifications:
	// recipient 0x00 created_seq(8) notification_id → empty.
	bucketNotificationRecipients = []byte("notifications_by_recipient")
	// bucketNotificationCounts maps a status to its count (uint64,
	// big-endian).
	bucketNotificationCounts = []byte("notification_counts")
	// bucketNotificationsPendingTo lists each recipient's pending
	// notifications in the order of their sources: recipient 0x00
	// order_seq(8) created_seq(8) notification_id → empty
	// (notificationRecord.pendingToKey, PendingAhead).
	bucketNotificationsPendingTo = []byte("notifications_pending_by_recipient")
)

// NotificationView is a notification as bankbook.q.notify.list shows it.
type NotificationView = api.NotificationView

// notificationRecord is what bucketNotifications holds: the view and the
// sequence of the commit that created the notification, its place in the
// indexes.
type notificationRecord struct {
	View       NotificationView `json:"view"`
	CreatedSeq eventstore.Seq   `json:"created_seq"`
	// SourceSeq is the sequence of the commit whose event called for the
	// notification (0: not recorded with it).
	SourceSeq eventstore.Seq `json:"source_seq,omitempty"`
	// Throttled says the last failure was not counted (the provider's
	// 429, its channel just created, the limiter not asked): the
	// notification goes again as soon as the limit allows, still before its
	// recipient's later ones (PendingAhead).
	Throttled bool `json:"throttled,omitempty"`
}

// pendingToKey is the notification's key in bucketNotificationsPendingTo:
// among its recipient's, by its source's sequence (or, recorded without
// it, its own creation's), then, among those of one commit, by its
// creation.
func (r notificationRecord) pendingToKey() []byte {
	k := notificationKey(r.View.Recipient, cmp.Or(r.SourceSeq, r.CreatedSeq), "")
	k = binary.BigEndian.AppendUint64(k, uint64(r.CreatedSeq))
	return append(k, r.View.NotificationID...)
}

// allStatuses is the index prefix under which every notification is listed.
const allStatuses = "*"

func notificationKey(prefix string, created eventstore.Seq, id string) []byte {
	k := make([]byte, 0, len(prefix)+1+8+len(id))
	k = append(k, prefix...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(created))
	return append(k, id...)
}

// applyNotifications is the "notifications" projection: notification
// events into bucketNotifications (buckets[0]), bucketNotificationIndex
// (buckets[1]), bucketNotificationRecipients (buckets[2]) and
// bucketNotificationCounts (buckets[3]) and bucketNotificationsPendingTo
// (buckets[4]).
func applyNotifications(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	records, index, recipients, counts, pendingTo := buckets[0], buckets[1], buckets[2], buckets[3], buckets[4]
	if e, ok := ev.(domain.NotificationCreated); ok {
		id := string(e.NotificationID)
		if records.Get([]byte(id)) != nil {
			return fmt.Errorf("%w: notification %s created twice", ErrInconsistent, id)
		}
		rec := notificationRecord{CreatedSeq: c.Seq, SourceSeq: eventstore.Seq(e.SourceSeq), View: NotificationView{
			NotificationID: id, Kind: e.Kind, Recipient: e.Recipient, Status: api.NotificationPending,
			CreatedAt: domain.FormatTime(e.CreatedAt), Message: e.Message, SourceEventID: e.SourceEventID, Seq: api.Seq(c.Seq),
		}}
		for _, k := range [][]byte{notificationKey(allStatuses, c.Seq, id), notificationKey(api.NotificationPending, c.Seq, id)} {
			if err := index.Put(k, nil); err != nil {
				return err
			}
		}
		if err := recipients.Put(notificationKey(e.Recipient, c.Seq, id), nil); err != nil {
			return err
		}
		if err := pendingTo.Put(rec.pendingToKey(), nil); err != nil {
			return err
		}
		if err := addCount(counts, api.NotificationPending, 1); err != nil {
			return err
		}
		return putJSON(records, id, rec)
	}
	var (
		id     domain.NotificationID
		change func(*NotificationView)
	)
	switch e := ev.(type) {
	case domain.NotificationAttempted:
		// Under way: no longer due at the failure's retry time.
		id, change = e.NotificationID, func(v *NotificationView) { v.Attempts, v.RetryAt = e.Attempt, "" }
	case domain.NotificationSent:
		id, change = e.NotificationID, func(v *NotificationView) {
			v.Status, v.SentAt, v.RetryAt = api.NotificationSent, domain.FormatTime(e.SentAt), ""
		}
	case domain.NotificationFailed:
		id, change = e.NotificationID, func(v *NotificationView) {
			v.LastError, v.RetryAt = e.Error, ""
			if !e.RetryAt.IsZero() {
				v.RetryAt = domain.FormatTime(e.RetryAt)
			}
		}
	case domain.NotificationDeadLettered:
		id, change = e.NotificationID, func(v *NotificationView) {
			v.Status, v.RetryAt = api.NotificationDead, ""
			if e.LastError != "" {
				v.LastError = e.LastError
			}
		}
	case domain.NotificationRedriven:
		id, change = e.NotificationID, func(v *NotificationView) { v.Status, v.RetryAt = api.NotificationPending, "" }
	default:
		return nil
	}
	var rec notificationRecord
	found, err := getJSON(records, string(id), &rec)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: event for notification %s, which was never created", ErrInconsistent, id)
	}
	before := rec.View.Status
	change(&rec.View)
	f, failed := ev.(domain.NotificationFailed)
	rec.Throttled = failed && f.Throttled && rec.View.Status == api.NotificationPending
	rec.View.Seq = api.Seq(c.Seq)
	if after := rec.View.Status; after != before {
		if err := index.Delete(notificationKey(before, rec.CreatedSeq, string(id))); err != nil {
			return err
		}
		if err := index.Put(notificationKey(after, rec.CreatedSeq, string(id)), nil); err != nil {
			return err
		}
		if err := addCount(counts, before, -1); err != nil {
			return err
		}
		if err := addCount(counts, after, 1); err != nil {
			return err
		}
		k := rec.pendingToKey()
		switch {
		case before == api.NotificationPending:
			err = pendingTo.Delete(k)
		case after == api.NotificationPending:
			err = pendingTo.Put(k, nil)
		}
		if err != nil {
			return err
		}
	}
	return putJSON(records, string(id), rec)
}

func addCount(b *bbolt.Bucket, status string, delta int64) error {
	var n uint64
	if raw := b.Get([]byte(status)); len(raw) == 8 {
		n = binary.BigEndian.Uint64(raw)
	}
	n = uint64(int64(n) + delta)
	return b.Put([]byte(status), binary.BigEndian.AppendUint64(nil, n))
}

// NotificationQueue is where a notification stands among those to send
// (PendingAhead).
type NotificationQueue struct {
	// Ahead is the notification to the same recipient that goes first: the
	// oldest one still pending whose source came before this one's, and
	// that is not waiting for a retry after a failed send: never tried, or
	// under way (an attempt recorded with no outcome yet, or in doubt, which
	// is settled soon), or throttled (a failure not counted, tried again as
	// soon as the limit allows) ("" for none). One that failed and waits for
	// its next try holds nothing up.
	Ahead string
	// Queued counts, when there is one Ahead, the notifications to anyone
	// pending that were created before this one: roughly how many slots of
	// the shared limit go first.
	Queued int
	// SourceSeq is the sequence of the commit whose event called for this
	// notification (0: not recorded with it, or not in the read models).
	SourceSeq eventstore.Seq
}

// PendingAhead returns where notification id stands. Messages to one
// recipient thus reach it in the order of the events that called for them,
// unless a send fails. An id the read models do not hold (yet) has nothing
// ahead of it.
func (s *Store) PendingAhead(id string) (NotificationQueue, error) {
	var q NotificationQueue
	err := s.view(func(tx *bbolt.Tx) error {
		records, err := queryBucket(tx, bucketNotifications)
		if err != nil {
			return err
		}
		pendingTo, err := queryBucket(tx, bucketNotificationsPendingTo)
		if err != nil {
			return err
		}
		var rec notificationRecord
		if found, err := getJSON(records, id, &rec); err != nil || !found {
			return err
		}
		q.SourceSeq = rec.SourceSeq
		prefix := append([]byte(rec.View.Recipient), 0)
		end := rec.pendingToKey()
		c := pendingTo.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			other := string(k[len(prefix)+16:])
			var o notificationRecord
			found, err := getJSON(records, other, &o)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("%w: notification %s indexed but not stored", ErrInconsistent, other)
			}
			if o.View.Attempts == 0 || o.View.RetryAt == "" || o.Throttled {
				q.Ahead = other
				break
			}
		}
		if q.Ahead == "" {
			return nil
		}
		index, err := queryBucket(tx, bucketNotificationIndex)
		if err != nil {
			return err
		}
		prefix = append([]byte(api.NotificationPending), 0)
		end = notificationKey(api.NotificationPending, rec.CreatedSeq, "")
		c = index.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			q.Queued++
		}
		return nil
	})
	return q, err
}

// Notifications lists notifications oldest first (bankbook.q.notify.list):
// of one status and one recipient when given ("" for any), up to limit,
// after cursor ("" for the first page; a cursor this method did not hand out
// is ErrBadCursor). NextCursor is "" at the end.
func (s *Store) Notifications(status, recipient string, limit int, cursor string) (api.NotifyListReply, error) {
	out := api.NotifyListReply{Notifications: []NotificationView{}}
	limit = max(limit, 1)
	after, err := cursorAfter(cursor, func(after []byte) bool { return len(after) > 8 })
	if err != nil {
		return api.NotifyListReply{}, err
	}
	bucket, prefixKey := bucketNotificationIndex, allStatuses
	switch {
	case recipient != "":
		bucket, prefixKey = bucketNotificationRecipients, recipient
	case status != "":
		prefixKey = status
	}
	err = s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucket)
		if err != nil {
			return err
		}
		records, err := queryBucket(tx, bucketNotifications)
		if err != nil {
			return err
		}
		prefix := append([]byte(prefixKey), 0)
		start := append(bytes.Clone(prefix), after...)
		c := b.Cursor()
		k, _ := c.Seek(start)
		if len(after) > 0 && bytes.Equal(k, start) {
			k, _ = c.Next()
		}
		var (
			last []byte
			size pageBytes
		)
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			id := k[len(prefix)+8:]
			var rec notificationRecord
			raw := records.Get(id)
			if raw == nil {
				return fmt.Errorf("%w: notification %s indexed but not stored", ErrInconsistent, id)
			}
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("notification %s: %w", id, err)
			}
			if status != "" && rec.View.Status != status {
				continue
			}
			if len(out.Notifications) == limit {
				out.NextCursor = hex.EncodeToString(last)
				return nil
			}
			if fits, err := size.fitsItem(len(out.Notifications), rec.View); err != nil || !fits {
				out.NextCursor = hex.EncodeToString(last)
				return err
			}
			out.Notifications = append(out.Notifications, rec.View)
			last = k[len(prefix):]
		}
		return nil
	})
	if err != nil {
		return api.NotifyListReply{}, err
	}
	return out, nil
}

// Notification returns one notification; false if none has been applied
// with that ID.
func (s *Store) Notification(id string) (NotificationView, bool, error) {
	var rec notificationRecord
	found, err := lookup(s, bucketNotifications, id, &rec)
	return rec.View, found, err
}

// NotificationCounts returns how many notifications are in each status
// (pending, sent, dead; a status with none is 0).
func (s *Store) NotificationCounts() (map[string]int, error) {
	out := map[string]int{api.NotificationPending: 0, api.NotificationSent: 0, api.NotificationDead: 0}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketNotificationCounts)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] = int(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	})
	return out, err
}

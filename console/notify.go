package console

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/bankbook/bankbook/api"
)

type notificationsData struct {
	Status        string
	Statuses      []string
	Notifications []api.NotificationView
	Pager         pager
	Limiter       *api.NotifyLimiterReply
	LimiterErr    *errView
	// Keys are the Idempotency-Keys of the redrive forms, by notification.
	Keys map[string]string
}

// notifications lists notifications (알림) by status, with the limiter's
// state and, for dead ones, a redrive form.
func (c *Console) notifications(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	cursor := q.Get("cursor")
	d := notificationsData{Status: q.Get("status"), Statuses: []string{api.NotificationPending, api.NotificationSent, api.NotificationDead}, Keys: map[string]string{}}
	rep, _, err := call(c, r, s, api.NotifyList, api.NotifyListRequest{Status: d.Status, PageRequest: api.PageRequest{Limit: pageLimit(r, 25), Cursor: cursor}}, "")
	v := view{Title: "Notifications 알림", Nav: "notifications", Err: apiError(err)}
	d.Notifications, d.Pager = rep.Notifications, newPager(Prefix+"notifications", q, cursor, rep.NextCursor)
	for _, n := range d.Notifications {
		if n.Status == api.NotificationDead {
			d.Keys[n.NotificationID] = idempotencyKey()
		}
	}
	lim, _, lerr := call(c, r, s, api.NotifyLimiter, api.EmptyRequest{}, "")
	if lerr == nil {
		d.Limiter = &lim
	}
	d.LimiterErr = apiError(lerr)
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "notifications", v)
}

// redriveNotification sends bankbook.cmd.notify.redrive with the form's
// Idempotency-Key.
func (c *Console) redriveNotification(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("notification")
	v := view{Title: "Redrive notification 알림 재전송", Nav: "notifications"}
	// The form's key is what makes a double click act once: a POST without
	// one is not sent keyless (it would act again on every submit).
	if key := r.PostFormValue("idempotency_key"); key == "" {
		v.Err = &errView{Status: http.StatusBadRequest, Code: api.CodeInvalidIdemKey, Message: "the form carries no Idempotency-Key; open the notifications page again"}
	} else {
		rep, raw, err := call(c, r, s, api.NotifyRedrive, api.NotifyRedriveRequest{NotificationID: id}, key)
		v.Err = apiError(err)
		if err == nil {
			v.Result = &resultView{What: "Notification " + rep.NotificationID + " is " + rep.Status + " again", Seq: rep.Seq, Replayed: raw.Replayed}
		}
	}
	c.logAction(s, "notify.redrive", id, v)
	v.Data = actionData{Back: Prefix + "notifications?status=dead", BackLabel: "Back to dead notifications"}
	c.render(w, r, s, statusOf(v.Err), "action", v)
}

// actionData is the result page of an action other than a resolution.
type actionData struct {
	Back      string
	BackLabel string
}

type deadLettersData struct {
	Part        string
	DeadLetters []api.DeadLetter
	Pager       pager
	// Keys are the Idempotency-Keys of the discard forms, by dead letter.
	Keys map[uint64]string
}

// deadLetters lists the work background parts gave up on (처리 실패), with
// a redrive form and a discard form each.
func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	cursor := q.Get("cursor")
	d := deadLettersData{Part: q.Get("part"), Keys: map[uint64]string{}}
	rep, _, err := call(c, r, s, api.DeadLetterList, api.DeadLettersRequest{Part: d.Part, PageRequest: api.PageRequest{Limit: pageLimit(r, 25), Cursor: cursor}}, "")
	v := view{Title: "Dead letters 처리 실패", Nav: "deadletters", Err: apiError(err)}
	d.DeadLetters, d.Pager = rep.DeadLetters, newPager(Prefix+"deadletters", q, cursor, rep.NextCursor)
	for _, l := range d.DeadLetters {
		d.Keys[l.ID] = idempotencyKey()
	}
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "deadletters", v)
}

// redriveDeadLetter hands a dead letter back to its part. The command is
// not idempotent by key; a second redrive of the same letter is refused
// by the engine (it is gone), which the page shows, and one sent while
// the first is running is refused here (409 in_progress).
func (c *Console) redriveDeadLetter(w http.ResponseWriter, r *http.Request, s *session) {
	id, idText, idErr := deadLetterID(r)
	v := view{Title: "Redrive dead letter 재처리", Nav: "deadletters"}
	if idErr != nil {
		v.Err = idErr
	} else if !c.redriving.begin(id) {
		// The command takes no key and the engine does not serialise
		// redrives of one letter: a double click would hand the work to
		// its part twice at once. One redrive of a letter at a time.
		v.Err = &errView{Status: http.StatusConflict, Code: "in_progress", Message: "a redrive of dead letter " + idText + " is still running; reload the dead letters to see its outcome"}
	} else {
		rep, _, err := call(c, r, s, api.DeadLetterRedrive, api.DeadLetterRequest{ID: id}, "")
		c.redriving.end(id)
		v.Err = apiError(err)
		if err == nil {
			v.Result = deadLetterResult(idText, rep, false)
		}
	}
	c.logAction(s, "deadletter.redrive", idText, v)
	v.Data = actionData{Back: Prefix + "deadletters", BackLabel: "Back to dead letters"}
	c.render(w, r, s, statusOf(v.Err), "action", v)
}

// discardDeadLetter sets a dead letter's work aside for good with the
// form's reason (required), sending bankbook.cmd.deadletter.discard with
// the form's Idempotency-Key: a second submit of the form is answered with
// the first outcome.
func (c *Console) discardDeadLetter(w http.ResponseWriter, r *http.Request, s *session) {
	id, idText, idErr := deadLetterID(r)
	v := view{Title: "Discard dead letter 폐기", Nav: "deadletters"}
	switch key := r.PostFormValue("idempotency_key"); {
	case idErr != nil:
		v.Err = idErr
	case key == "":
		v.Err = &errView{Status: http.StatusBadRequest, Code: api.CodeInvalidIdemKey, Message: "the form carries no Idempotency-Key; open the dead letters page again"}
	case strings.TrimSpace(r.PostFormValue("reason")) == "":
		// Refused here, not by the engine, which would keep the 400 under
		// the form's key: going back to the form, the operator can give a
		// reason and submit it again.
		v.Err = &errView{Status: http.StatusBadRequest, Code: api.CodeInvalidInput, Message: "reason: is required to discard a dead letter; go back and give one"}
	default:
		rep, raw, err := call(c, r, s, api.DeadLetterDiscard, api.DeadLetterRequest{ID: id, Reason: r.PostFormValue("reason")}, key)
		v.Err = apiError(err)
		if err == nil {
			v.Result = deadLetterResult(idText, rep, raw.Replayed)
		}
	}
	c.logAction(s, "deadletter.discard", idText, v)
	v.Data = actionData{Back: Prefix + "deadletters", BackLabel: "Back to dead letters"}
	c.render(w, r, s, statusOf(v.Err), "action", v)
}

// deadLetterID reads the dead letter ID of an action's path, as sent and
// as a number; an error view for one that is not an ID.
func deadLetterID(r *http.Request) (uint64, string, *errView) {
	text := r.PathValue("id")
	id, err := strconv.ParseUint(text, 10, 64)
	if err != nil || id == 0 {
		return 0, text, &errView{Status: http.StatusBadRequest, Code: api.CodeInvalidInput, Message: "id: not a dead letter id"}
	}
	return id, text, nil
}

// deadLetterResult is what the page shows of a redrive or discard done.
func deadLetterResult(idText string, rep api.DeadLetterReply, replayed bool) *resultView {
	return &resultView{What: "Dead letter " + idText + " (" + rep.DeadLetter.Part + "): " + rep.Status, Seq: rep.Seq, Replayed: replayed}
}

// logAction logs an action's outcome.
func (c *Console) logAction(s *session, action, target string, v view) {
	ev := c.cfg.Log.Info().Str("user", s.name).Str("action", action).Str("target", target)
	if v.Err != nil {
		ev = ev.Str("code", v.Err.Code)
	} else if v.Result != nil {
		ev = ev.Uint64("seq", uint64(v.Result.Seq)).Bool("replayed", v.Result.Replayed)
	}
	ev.Msg("console: action")
}

// inFlight is the set of dead letters a redrive is running for.
type inFlight struct {
	mu  sync.Mutex
	ids map[uint64]bool
}

// begin marks id in flight; false when it already is.
func (f *inFlight) begin(id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ids[id] {
		return false
	}
	if f.ids == nil {
		f.ids = map[uint64]bool{}
	}
	f.ids[id] = true
	return true
}

func (f *inFlight) end(id uint64) {
	f.mu.Lock()
	delete(f.ids, id)
	f.mu.Unlock()
}

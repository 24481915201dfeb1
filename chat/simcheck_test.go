package chat

import (
	"testing"
	"time"
)

func TestRepeatsAndMostInWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	msg := func(ch, id string, ms int) SimMessage {
		data := `{"notification_id":"` + id + `"}`
		if id == "" {
			data = "{}"
		}
		return SimMessage{Channel: ch, CustomType: "bill_issued", Data: data, ReceivedAt: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	once := []SimMessage{msg("store:a", "n1", 0), msg("store:b", "n2", 200), msg("store:c", "n3", 400)}
	if r := Repeats(once); len(r) != 0 {
		t.Errorf("Repeats of distinct messages = %v, want none", r)
	}
	twice := append(once, msg("store:a", "n1", 900))
	if r := Repeats(twice); r["notification n1"] != 2 || r["channel store:a bill_issued"] != 2 || len(r) != 2 {
		t.Errorf("Repeats = %v, want n1 and store:a twice", r)
	}
	if r := Repeats([]SimMessage{msg("store:z", "", 0)}); r["no notification_id: store:z"] == 0 {
		t.Errorf("Repeats = %v, want the message without an id reported", r)
	}
	if n := MostInWindow(twice, time.Second); n != 4 {
		t.Errorf("MostInWindow(0,200,400,900ms; 1s) = %d, want 4", n)
	}
	if n := MostInWindow(twice, 500*time.Millisecond); n != 3 {
		t.Errorf("MostInWindow(0,200,400,900ms; 500ms) = %d, want 3", n)
	}
	spaced := []SimMessage{msg("a", "1", 0), msg("b", "2", 1000), msg("c", "3", 2000)}
	if n := MostInWindow(spaced, time.Second); n != 1 {
		t.Errorf("MostInWindow of messages a window apart = %d, want 1", n)
	}
}

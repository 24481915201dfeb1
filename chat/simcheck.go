package chat

import (
	"fmt"
	"slices"
	"time"
)

// Repeats returns what in msgs arrived more than once: each notification_id
// and each channel+custom_type seen twice or more, with its count, as
// "notification <id>" and "channel <channel> <custom_type>" keys, and
// "no notification_id: <channel>" for a message whose data lacks one. A
// dispatcher that delivers each notification once leaves it empty.
func Repeats(msgs []SimMessage) map[string]int {
	seen := map[string]int{}
	for _, m := range msgs {
		if id := m.NotificationID(); id != "" {
			seen["notification "+id]++
		} else {
			seen["no notification_id: "+m.Channel] += 2 // always reported
		}
		seen[fmt.Sprintf("channel %s %s", m.Channel, m.CustomType)]++
	}
	for k, n := range seen {
		if n < 2 {
			delete(seen, k)
		}
	}
	return seen
}

// MostInWindow is the largest number of msgs accepted within any interval
// of length window ([t, t+window)): what a provider that allows N in any
// rolling window checks.
func MostInWindow(msgs []SimMessage, window time.Duration) int {
	at := make([]time.Time, len(msgs))
	for i, m := range msgs {
		at[i] = m.ReceivedAt
	}
	slices.SortFunc(at, time.Time.Compare)
	most := 0
	for i, j := 0, 0; j < len(at); j++ {
		for at[j].Sub(at[i]) >= window {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

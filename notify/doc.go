// Package notify delivers bankbook's notifications: messages to stores,
// distributors and buyers through a chat provider that allows a few
// requests per second (DOMAIN.md §4).
//
// Two parts, each a reactor (eventstore.Store.Reactor) shared by every
// engine instance:
//
//   - Record (part react-notify) turns the events that call for a message
//     (domain.NotificationIntents: bills issued, cancelled and reminded, store
//     payments, cancelled and expired orders, wallet refunds) into
//     notification aggregates. Each is created with the expectation that
//     its aggregate has no commit yet, and its ID is derived from the
//     source event, the kind and the recipient, so one event gives one
//     notification per recipient however often it is delivered and however
//     many instances run. Nothing is sent here, and no command waits for a
//     message.
//   - Dispatch (part notify) sends them. It handles the commit that makes a
//     notification pending (notification.created, notification.redriven),
//     and keeps that commit until the notification is sent or dead; every
//     other notification commit is acknowledged at once. Any number of
//     dispatchers in any number of processes share the consumer, so a
//     crashed dispatcher's notification is delivered to another after the
//     consumer's AckWait.
//
// # Sending one notification
//
//  1. If the last attempt is in doubt (notification.attempted without an
//     outcome: a process died while sending, or the provider did not answer
//     in time), the dispatcher first waits until that attempt's lease, the
//     send timeout and the allowed clock skew have passed since it was
//     recorded (its sender can no longer be sending it), then asks the
//     provider whether the message arrived (chat.Provider.Delivered, by the
//     notification ID carried in the message's data) and records it sent
//     if it did. A provider that cannot tell (a webhook) gets it again,
//     with the same ID as its Idempotency-Key.
//  2. It reserves a slot from the shared limiter (package ratelimit: one KV
//     key per provider scope, the same for every dispatcher of every
//     process), sleeping for it when it is near (Config.MaxSlotWait) and
//     otherwise giving the commit back until then. The limiter failing
//     (KV unavailable) fails closed: the notification waits. A dispatcher
//     that wakes more than Config.MaxLateness after its slot takes a new
//     one, so a stall never crowds the provider's window; with none
//     within the attempt's lease of step 3 (a pause since, the limiter
//     unreachable) the attempt is recorded as not sent, neither counted
//     nor in doubt, and the notification waits.
//  3. It records notification.attempted, which starts the attempt's lease
//     (Config.AttemptLease), and sends only while the lease runs: a
//     dispatcher that stalled past it leaves the attempt in doubt for
//     step 1, so it and a dispatcher taking over never both send.
//  4. It calls the provider and records the result: sent; a 429 pauses
//     every dispatcher through the limiter's shared pause and records a
//     throttled failure, which does not count towards dead-lettering; a
//     refusal of the message (a 4xx other than those below, or a message
//     the adapter finds invalid) dead-letters it at once; a refused token
//     (401, 403), a 404/405 without a provider error code or a redirect
//     (a wrong URL), the deployment's fault, not the message's, a 5xx, a
//     connection error or a timeout is a failure, tried again after an
//     exponential backoff with jitter (half of each wait random), until
//     Config.MaxAttempts failures since the last redrive dead-letter it. A
//     timeout or a 5xx (a provider, or a gateway in front of it, may fail
//     after storing the message) leaves the attempt in doubt: step 1 runs
//     before the next. A doubt the provider cannot be asked about for as
//     long as failing sends take to dead-letter at the least (counted
//     from the first check that failed, among others) is dead-lettered
//     too, still in doubt.
//
// Every step is a command on the notification aggregate that appends
// nothing when it already took effect, so any step may run again. A
// recipient sees a message twice only if a send timed out or was answered
// 5xx after the provider stored it and the provider cannot be asked
// (webhooks; the receiver drops the copy by its notification_id), or if
// the clocks of two engine hosts differ by more than Config.ClockSkew.
//
// A dead notification is listed by bankbook.q.notify.list (status dead)
// and counted in bankbook_notifications{status="dead"};
// bankbook.cmd.notify.redrive makes it pending again, and its
// notification.redriven commit brings it back to the dispatchers.
package notify

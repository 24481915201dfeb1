// Package soak is bankbook's kill -9 reliability run: a separate engine
// process (the real bankbook binary, 'bankbook serve --bank-sim --chat-sim'),
// paying out through a simulated firm-banking provider in the run's own
// process that outlives every kill, as a real provider does, clients
// that retry every request with the same Idempotency-Key until it gets a
// definitive answer, and SIGKILL of the engine every few seconds, restarted
// on the same data directory each time (halfway through without its
// read-model file, which it rebuilds; Config.Instances: several
// instances sharing the first's NATS server, each kill picking one). When
// the traffic stops and the engine is idle, it checks what the run
// promised.
//
// What it guarantees, as a test:
//   - An acknowledged reply is appended to the ack log and fsynced before it
//     is counted, and the checks read the acks back from that log, not from
//     memory: an ack the run counts is one the log holds.
//   - Nothing lost: every acknowledged command's effect is in the event
//     stream and the read models (orders with their acknowledged status or a
//     later one, recorded deposits with their outcome, resolutions,
//     withdrawals with their payout, finished; bills with their amount,
//     cancelled if acknowledged so, ended once superseded, paid what the
//     stream's store payments say; store payments with the bill they were
//     acknowledged to, the one current when the store paid, as the client
//     that bills the store alone knows it); every simulated bank transfer
//     made long enough before a kill is recorded.
//   - Nothing duplicated: per (command, Idempotency-Key, aggregate) at most
//     one commit; each bank transaction recorded once; each order paid at
//     most once; each wallet credited once per reference and debited once
//     per payout; each payout requested and finished at most once; each
//     store payment recorded once; each bill ended at most once; one
//     notification per event and recipient (every one the stream's events
//     call for), each sent once (none left pending or dead-lettered); a command
//     refused with a definitive error wrote nothing under its key; a repeat
//     with the same key gets the same answer, during the kills and, for
//     every key, once more after them.
//   - Reconciliation: bank statements reconciled while the engine was
//     killed are answered as recorded when made again; a statement with a
//     line made up, one at another amount and one twice finds exactly
//     those; each run is one event in the stream.
//   - The books: the trial balance sums to 0; every wallet's balance is
//     minus its ledger account and what the stream's credits and debits say;
//     'bankbook replay' rebuilds the same content hash as the live read
//     models; 'bankbook audit verify' is clean, against every instance's
//     read models; no background work was dead-lettered; the engine exits
//     cleanly on SIGTERM at the end and (built with -race) reports no data
//     race.
//
// A run is bounded: a fixed number of kill cycles within a time limit,
// requests retried within a budget, and every wait has a timeout. Traffic
// goes to 127.0.0.1 only. The engine process is killed when Run returns, on
// a panic too, and the child dies with the run's process (Pdeathsig).
//
// The simulated bank and chat provider live inside the engine process and
// die with it: a transfer the simulated bank acknowledged but
// the scanner had not yet recorded is lost with it, as a real bank's would
// not be. Those transfers are counted, not failed.
package soak

//! Attempt limits (logins, registrations, PIN guesses, joins, chat) behind one interface, [`RateLimiter`],
//! with two backends: in memory for a single process (SQLite), and counted in the database when several
//! `confctl serve` replicas share PostgreSQL, so three replicas do not triple an attacker's guesses.
//!
//! A limit is *reserved* before the work it guards: [`RateLimiter::acquire`] takes a slot atomically, so 40
//! parallel guesses get exactly `limit` evaluations, never more. Where only failures should count (a right
//! PIN, so a lecture hall behind one NAT is not locked out), the caller hands the slot back with
//! [`RateLimiter::release`] once the attempt turned out fine — while the attempt runs, it counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::store::{Counted, Dialect, Store};

/// A slot taken by [`RateLimiter::acquire`]: kept, it counts; released, it does not.
#[derive(Debug)]
#[must_use = "a slot either counts (drop it) or is handed back with release()"]
pub struct Slot {
    key: String,
    /// Which window the slot was taken in, so a late release never refunds a newer window.
    window: i64,
}

/// Counts attempts per key in fixed windows.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Takes one slot for `key`. With `limit` slots already taken within `window`: the domain's 429
    /// ([`crate::Error::RateLimited`], with the time until the window ends), and nothing is counted. A
    /// shared limiter whose database does not answer fails the same way as the database does (503).
    async fn acquire(&self, key: &str, limit: u32, window: Duration) -> crate::Result<Slot>;
    /// Hands a slot back (the attempt it guarded should not count).
    async fn release(&self, slot: Slot);
}

/// The limiter for this store: shared through the database on PostgreSQL (where several replicas may run),
/// in memory on SQLite (one process).
pub fn for_store(store: &Store) -> Arc<dyn RateLimiter> {
    match store.dialect() {
        Dialect::Postgres => Arc::new(SharedRateLimiter::new(store.clone())),
        Dialect::Sqlite => Arc::new(InMemoryRateLimiter::default()),
    }
}

/// The single-process limiter.
#[derive(Debug, Default)]
pub struct InMemoryRateLimiter {
    state: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    by_key: HashMap<String, Window>,
    /// Numbers windows so a slot knows which one it belongs to.
    next_id: i64,
}

#[derive(Debug)]
struct Window {
    id: i64,
    start: Instant,
    len: Duration,
    taken: u32,
}

/// Past this many keys, expired windows are swept on the next acquire so an attacker rotating keys cannot
/// grow memory without bound.
const SWEEP_THRESHOLD: usize = 10_000;

impl InMemoryRateLimiter {
    fn take(&self, key: &str, limit: u32, window: Duration) -> Result<Slot, Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Windows { by_key, next_id } = &mut *state;
        if by_key.len() > SWEEP_THRESHOLD {
            by_key.retain(|_, w| now.duration_since(w.start) < w.len);
        }
        let fresh = |next_id: &mut i64| {
            *next_id += 1;
            Window { id: *next_id, start: now, len: window, taken: 0 }
        };
        let entry = by_key.entry(key.to_owned()).or_insert_with(|| fresh(next_id));
        if now.duration_since(entry.start) >= entry.len {
            *entry = fresh(next_id);
        }
        if entry.taken >= limit {
            return Err(entry.len.saturating_sub(now.duration_since(entry.start)));
        }
        entry.taken += 1;
        Ok(Slot { key: key.to_owned(), window: entry.id })
    }

    fn give_back(&self, slot: Slot) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = state.by_key.get_mut(&slot.key) {
            if entry.id == slot.window {
                entry.taken = entry.taken.saturating_sub(1);
            }
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn acquire(&self, key: &str, limit: u32, window: Duration) -> crate::Result<Slot> {
        self.take(key, limit, window).map_err(refused)
    }

    async fn release(&self, slot: Slot) {
        self.give_back(slot);
    }
}

/// The limiter of replicas sharing a PostgreSQL database: slots are counted by atomic upserts on the keys'
/// rows (see `Store::take_attempts`), timed by the database's clock, so parallel attempts spread over any
/// number of replicas meet one limit exactly.
///
/// The attempts are counted by one task: it takes every attempt that queued up while its last statement
/// ran and counts them all in one statement, so a lecture hall joining at once costs a round trip and a row
/// update per batch rather than per guest, and the guests of one address no longer queue one by one on
/// their key's row lock. An idle server still counts a lone attempt at once.
#[derive(Debug)]
pub struct SharedRateLimiter {
    store: Store,
    /// The counting task's queue, started on first use (in the runtime of the caller).
    queue: Mutex<Option<mpsc::UnboundedSender<Wanted>>>,
}

/// One attempt waiting to be counted.
struct Wanted {
    key: String,
    limit: u32,
    window_ms: i64,
    answer: oneshot::Sender<crate::Result<Slot>>,
}

/// The attempts of one limit waiting for their answers, by key, in the order they were asked.
type Waiting = BTreeMap<String, Vec<oneshot::Sender<crate::Result<Slot>>>>;

/// Attempts counted in one round at most.
const ROUND: usize = 4096;

impl SharedRateLimiter {
    fn new(store: Store) -> Self {
        Self { store, queue: Mutex::new(None) }
    }

    /// Hands `wanted` to the counting task, starting one when there is none (or its runtime has ended).
    fn enqueue(&self, wanted: Wanted) {
        let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let wanted = match queue.as_ref() {
            Some(tx) => match tx.send(wanted) {
                Ok(()) => return,
                Err(mpsc::error::SendError(wanted)) => wanted,
            },
            None => wanted,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(count(self.store.clone(), rx));
        // A fresh channel whose receiver was just handed to the task: the send cannot fail.
        let _ = tx.send(wanted);
        *queue = Some(tx);
    }
}

#[async_trait::async_trait]
impl RateLimiter for SharedRateLimiter {
    async fn acquire(&self, key: &str, limit: u32, window: Duration) -> crate::Result<Slot> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        if limit == 0 {
            return Err(refused(window));
        }
        let (answer, answered) = oneshot::channel();
        self.enqueue(Wanted { key: key.to_owned(), limit, window_ms, answer });
        answered.await.unwrap_or_else(|_| {
            Err(crate::Error::unavailable("database_unavailable", "the attempt limit could not be counted"))
        })
    }

    async fn release(&self, slot: Slot) {
        // A slot that cannot be handed back keeps counting: the safe side of a limit against guessing.
        if let Err(err) = self.store.give_back_attempt(&slot.key, slot.window).await {
            tracing::warn!(error = %err, "could not hand an attempt back to the shared limit");
        }
    }
}

/// The counting task: each round takes what has queued (up to [`ROUND`]), counts the attempts of each limit
/// in one statement and answers them; ends when the limiter is dropped.
async fn count(store: Store, mut queue: mpsc::UnboundedReceiver<Wanted>) {
    while let Some(first) = queue.recv().await {
        let mut round = vec![first];
        while round.len() < ROUND {
            match queue.try_recv() {
                Ok(wanted) => round.push(wanted),
                Err(_) => break,
            }
        }
        // Attempts under one limit and window share a statement; within it, a key's attempts are counted
        // together and the first ones asked get the slots.
        let mut by_limit: BTreeMap<(u32, i64), Waiting> = BTreeMap::new();
        for Wanted { key, limit, window_ms, answer } in round {
            by_limit.entry((limit, window_ms)).or_default().entry(key).or_default().push(answer);
        }
        for ((limit, window_ms), keys) in by_limit {
            let wants: Vec<(&str, u32)> = keys
                .iter()
                .map(|(key, answers)| (key.as_str(), u32::try_from(answers.len()).unwrap_or(u32::MAX)))
                .collect();
            let counted = store.take_attempts(&wants, limit, window_ms).await;
            answer_round(counted, keys, window_ms);
        }
    }
}

/// Answers the attempts of one statement: the first `granted` of each key get a slot, the others a 429 with
/// the time left in the window; when the statement failed, everyone hears the failure.
fn answer_round(counted: crate::Result<Vec<Counted>>, mut keys: Waiting, window_ms: i64) {
    let counted = match counted {
        Ok(counted) => counted,
        Err(err) => {
            if !matches!(err, crate::Error::Unavailable { .. }) {
                tracing::error!(error = %err, "cannot count attempts against the shared limit");
            }
            for answer in keys.into_values().flatten() {
                let _ = answer.send(Err(same_failure(&err)));
            }
            return;
        }
    };
    for Counted { key, granted, window, left_ms } in counted {
        let Some(answers) = keys.remove(&key) else { continue };
        let granted = usize::try_from(granted).unwrap_or(usize::MAX);
        for (i, answer) in answers.into_iter().enumerate() {
            let result = if i < granted {
                Ok(Slot { key: key.clone(), window })
            } else {
                Err(refused(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))))
            };
            let _ = answer.send(result);
        }
    }
    // A key the statement did not return (it returns every key it was given): nothing was counted for it.
    for answer in keys.into_values().flatten() {
        let _ = answer.send(Err(refused(Duration::from_millis(u64::try_from(window_ms).unwrap_or(0)))));
    }
}

/// The failure of a shared count, for each attempt it was counting: "unavailable" stays itself (a 503 the
/// client may retry); anything else, logged once above, becomes an internal error without details.
fn same_failure(err: &crate::Error) -> crate::Error {
    match err {
        crate::Error::Unavailable { code, message } => crate::Error::unavailable(code, message),
        _ => crate::Error::internal("the shared attempt limit could not be counted"),
    }
}

/// Turns a limiter refusal into the domain's 429 error.
pub fn refused(retry_after: Duration) -> crate::Error {
    crate::Error::RateLimited { retry_after: retry_after.max(Duration::from_secs(1)) }
}

/// Takes a slot that always counts, or answers 429.
pub async fn check(limiter: &dyn RateLimiter, key: &str, limit: u32, window: Duration) -> crate::Result<()> {
    limiter.acquire(key, limit, window).await.map(drop)
}

/// Takes one slot under each `(key, limit)` pair, all or none: when one is refused (or fails), the slots
/// already taken are handed back and that answer is returned.
pub async fn acquire_all(
    limiter: &dyn RateLimiter,
    keys: &[(&str, u32)],
    window: Duration,
) -> crate::Result<Vec<Slot>> {
    let mut slots = Vec::with_capacity(keys.len());
    for (key, limit) in keys {
        match limiter.acquire(key, *limit, window).await {
            Ok(slot) => slots.push(slot),
            Err(err) => {
                for slot in slots {
                    limiter.release(slot).await;
                }
                return Err(err);
            }
        }
    }
    Ok(slots)
}

/// Hands every slot back.
pub async fn release_all(limiter: &dyn RateLimiter, slots: Vec<Slot>) {
    for slot in slots {
        limiter.release(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn allows_up_to_limit_then_refuses_with_retry_after() {
        let l = InMemoryRateLimiter::default();
        for _ in 0..3 {
            assert!(l.acquire("k", 3, MINUTE).await.is_ok());
        }
        let crate::Error::RateLimited { retry_after } = l.acquire("k", 3, MINUTE).await.unwrap_err() else {
            panic!("not a rate limit");
        };
        assert!(retry_after <= MINUTE && retry_after > Duration::from_secs(50));
        assert!(l.acquire("other", 3, MINUTE).await.is_ok(), "keys are independent");
    }

    #[tokio::test]
    async fn released_slots_do_not_count() {
        let l = InMemoryRateLimiter::default();
        for _ in 0..10 {
            let slot = l.acquire("k", 1, MINUTE).await.unwrap();
            l.release(slot).await;
        }
        let _kept = l.acquire("k", 1, MINUTE).await.unwrap();
        assert!(l.acquire("k", 1, MINUTE).await.is_err());
    }

    #[tokio::test]
    async fn a_held_slot_counts_while_its_work_runs() {
        let l = InMemoryRateLimiter::default();
        let held = l.acquire("k", 1, MINUTE).await.unwrap();
        assert!(l.acquire("k", 1, MINUTE).await.is_err(), "a parallel attempt must not get in");
        l.release(held).await;
        assert!(l.acquire("k", 1, MINUTE).await.is_ok());
    }

    #[tokio::test]
    async fn a_late_release_does_not_refund_a_newer_window() {
        let l = InMemoryRateLimiter::default();
        let old = l.acquire("k", 1, Duration::from_millis(1)).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let _new = l.acquire("k", 1, MINUTE).await.unwrap();
        l.release(old).await;
        assert!(l.acquire("k", 1, MINUTE).await.is_err());
    }

    #[tokio::test]
    async fn acquire_all_is_all_or_nothing() {
        let l = InMemoryRateLimiter::default();
        let _full = l.acquire("b", 1, MINUTE).await.unwrap();
        assert!(acquire_all(&l, &[("a", 1), ("b", 1)], MINUTE).await.is_err());
        assert!(l.acquire("a", 1, MINUTE).await.is_ok(), "the slot on `a` was handed back");
    }

    #[tokio::test]
    async fn window_resets() {
        let l = InMemoryRateLimiter::default();
        let _a = l.acquire("k", 1, Duration::from_millis(1)).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.acquire("k", 1, Duration::from_millis(1)).await.is_ok());
    }
}

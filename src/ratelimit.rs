//! Attempt limits (logins, registrations, PIN guesses, joins, chat) behind one interface, [`RateLimiter`],
//! with two backends: in memory for a single process (SQLite), and counted in the database when several
//! `confctl serve` replicas share PostgreSQL, so three replicas do not triple an attacker's guesses.
//!
//! A limit is *reserved* before the work it guards: [`RateLimiter::acquire`] takes a slot atomically, so 40
//! parallel guesses get exactly `limit` evaluations, never more. Where only failures should count (a right
//! PIN, so a lecture hall behind one NAT is not locked out), the caller hands the slot back with
//! [`RateLimiter::release`] once the attempt turned out fine — while the attempt runs, it counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{Attempt, Dialect, Store};

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
        Dialect::Postgres => Arc::new(SharedRateLimiter { store: store.clone() }),
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

/// The limiter of replicas sharing a PostgreSQL database: every slot is one atomic upsert on the key's row
/// (see `Store::take_attempt`), timed by the database's clock, so parallel attempts spread over any number
/// of replicas meet one limit exactly. A round trip per attempt is the price.
#[derive(Debug)]
pub struct SharedRateLimiter {
    store: Store,
}

#[async_trait::async_trait]
impl RateLimiter for SharedRateLimiter {
    async fn acquire(&self, key: &str, limit: u32, window: Duration) -> crate::Result<Slot> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        if limit == 0 {
            return Err(refused(window));
        }
        match self.store.take_attempt(key, limit, window_ms).await? {
            Attempt::Taken { window } => Ok(Slot { key: key.to_owned(), window }),
            Attempt::Refused { retry_after_ms } => {
                Err(refused(Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0))))
            }
        }
    }

    async fn release(&self, slot: Slot) {
        // A slot that cannot be handed back keeps counting: the safe side of a limit against guessing.
        if let Err(err) = self.store.give_back_attempt(&slot.key, slot.window).await {
            tracing::warn!(error = %err, "could not hand an attempt back to the shared limit");
        }
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

//! Requests per second for the monitor's header, counted at the cost of one atomic update per request: a ring
//! of one-second slots, each holding the second it counts and how many requests arrived in it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Slots in the ring: more than the averaging window, so the second being filled is never one being read.
const SLOTS: usize = 16;
/// The rate is the average over this many whole seconds before the current one.
const WINDOW: u64 = 10;
/// The low bits of a slot count requests; the high bits hold the second (Unix time fits in 40 bits).
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// The request counter; lives in the application context.
#[derive(Debug, Default)]
pub struct Traffic {
    slots: [AtomicU64; SLOTS],
}

/// Requests per second of real time: the system clock, not the application's (which tests move forward).
fn now_secs() -> u64 {
    u64::try_from(crate::time::now_ms() / 1000).unwrap_or(0)
}

impl Traffic {
    /// Counts one request.
    pub fn count(&self) {
        self.count_at(now_secs());
    }

    fn count_at(&self, second: u64) {
        let slot = &self.slots[(second % SLOTS as u64) as usize];
        // The slot still counting an older second starts over; a full one stays full (16 million a second).
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
            Some(if packed >> COUNT_BITS == second {
                (packed & !COUNT_MASK) | ((packed & COUNT_MASK) + 1).min(COUNT_MASK)
            } else {
                (second << COUNT_BITS) | 1
            })
        });
    }

    /// Requests per second over the last ten whole seconds.
    pub fn per_second(&self) -> f64 {
        self.per_second_at(now_secs())
    }

    fn per_second_at(&self, now: u64) -> f64 {
        let counted: u64 = (1..=WINDOW)
            .filter_map(|ago| now.checked_sub(ago))
            .map(|second| {
                let packed = self.slots[(second % SLOTS as u64) as usize].load(Ordering::Relaxed);
                if packed >> COUNT_BITS == second { packed & COUNT_MASK } else { 0 }
            })
            .sum();
        counted as f64 / WINDOW as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_whole_seconds_and_forgets_old_ones() {
        let t = Traffic::default();
        for _ in 0..30 {
            t.count_at(1_000);
        }
        for _ in 0..10 {
            t.count_at(1_005);
        }
        // The second in progress does not count yet.
        t.count_at(1_010);
        assert!((t.per_second_at(1_010) - 4.0).abs() < 1e-9);
        // 1,000 has left the window; its slot is reused by 1,016 and starts over.
        assert!((t.per_second_at(1_011) - 1.1).abs() < 1e-9);
        t.count_at(1_016);
        assert!((t.per_second_at(1_017) - 0.2).abs() < 1e-9, "{}", t.per_second_at(1_017));
        assert_eq!(Traffic::default().per_second(), 0.0);
    }
}

//! Series budgets (``max_series``) tracked across requests, in bounded memory: per metric, the 64-bit
//! hashes of the series admitted so far, never the series themselves.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;

use ahash::RandomState;

/// For sets of hashes made with the process's random key: they need no hashing again.
#[derive(Default)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; any other input still gets a deterministic value.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Series = HashSet<u64, BuildHasherDefault<Prehashed>>;

pub struct Budgets {
    inner: Mutex<Inner>,
    /// Seeded per process: no request can choose series that collide.
    hasher: RandomState,
    pub max_tracked: u64,
}

#[derive(Default)]
struct Inner {
    series: HashMap<String, Series, RandomState>,
    tracked: u64,
}

impl Budgets {
    pub fn new(max_tracked: u64) -> Budgets {
        Budgets {
            inner: Mutex::new(Inner::default()),
            hasher: RandomState::new(),
            max_tracked,
        }
    }

    pub fn hash<T: Hash>(&self, identity: &T) -> u64 {
        self.hasher.hash_one(identity)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while the lock was held cannot leave the sets half-updated in a way that matters
        // (an insert either happened or not): carry on with them.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True when ``series`` of ``metric`` may flow under a budget of ``budget`` series: a known series
    /// always flows, a new one while the metric is under budget and the whole state under its cap.
    pub fn admit(&self, metric: &str, series: u64, budget: u64) -> bool {
        let mut inner = self.lock();
        let tracked = inner.tracked;
        // The common case, a known series, without allocating the metric's name.
        if inner
            .series
            .get(metric)
            .is_some_and(|known| known.contains(&series))
        {
            return true;
        }
        let known = inner.series.entry(metric.to_owned()).or_default();
        if known.len() as u64 >= budget || tracked >= self.max_tracked {
            return false;
        }
        known.insert(series);
        inner.tracked += 1;
        true
    }

    pub fn series_count(&self, metric: &str) -> u64 {
        self.lock().series.get(metric).map_or(0, |s| s.len() as u64)
    }

    pub fn tracked(&self) -> u64 {
        self.lock().tracked
    }

    pub fn forget(&self, metric: Option<&str>) {
        let mut inner = self.lock();
        match metric {
            None => {
                inner.series.clear();
                inner.tracked = 0;
            }
            Some(metric) => {
                let gone = inner.series.remove(metric).map_or(0, |s| s.len() as u64);
                inner.tracked -= gone;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_known_series_and_new_ones_under_budget() {
        let budgets = Budgets::new(3);
        assert!(budgets.admit("m", 1, 2));
        assert!(budgets.admit("m", 2, 2));
        assert!(!budgets.admit("m", 3, 2));
        assert!(budgets.admit("m", 1, 2));
        assert!(budgets.admit("n", 1, 5));
        assert!(!budgets.admit("n", 2, 5), "the whole state is capped at 3");
        budgets.forget(Some("m"));
        assert_eq!(budgets.tracked(), 1);
    }
}

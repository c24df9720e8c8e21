//! [`RecentKeys`]: dedupe keys of recently committed events, kept in memory by a backend.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

/// Dedupe keys of recently committed events, so that a retry arriving soon after its first copy
/// (Kratos retries after 1 s and 2 s, Identus after 5 s) is answered without a trip through the
/// writer. Only committed events are remembered, so a hit always means stored. Two generations
/// bound the memory: when the current one is full it becomes the previous one, and the previous
/// one is dropped.
pub struct RecentKeys {
    capacity: usize,
    current: HashMap<Arc<str>, HashMap<String, Uuid>>,
    current_len: usize,
    previous: HashMap<Arc<str>, HashMap<String, Uuid>>,
}

impl RecentKeys {
    /// Remembers up to about `2 * capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            current: Default::default(),
            current_len: 0,
            previous: Default::default(),
        }
    }

    /// The first copy's event id, if this key was committed recently.
    pub fn get(&self, source: &str, dedupe_key: &str) -> Option<Uuid> {
        let find = |g: &HashMap<Arc<str>, HashMap<String, Uuid>>| {
            g.get(source).and_then(|m| m.get(dedupe_key)).copied()
        };
        find(&self.current).or_else(|| find(&self.previous))
    }

    /// Remembers a committed key.
    pub fn insert(&mut self, source: &Arc<str>, dedupe_key: String, event_id: Uuid) {
        if self.current_len >= self.capacity {
            self.previous = std::mem::take(&mut self.current);
            self.current_len = 0;
        }
        let m = self.current.entry(source.clone()).or_default();
        if m.insert(dedupe_key, event_id).is_none() {
            self.current_len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keys_answer_per_source_and_stay_bounded() {
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let mut r = RecentKeys::new(2);
        let id1 = Uuid::new_v4();
        r.insert(&a, "k1".into(), id1);
        assert_eq!(r.get("a", "k1"), Some(id1));
        assert_eq!(r.get("b", "k1"), None, "keys are unique per source only");
        r.insert(&b, "k1".into(), Uuid::new_v4());
        r.insert(&a, "k2".into(), Uuid::new_v4());
        assert_eq!(
            r.get("a", "k1"),
            Some(id1),
            "still in the previous generation"
        );
        r.insert(&a, "k3".into(), Uuid::new_v4());
        r.insert(&a, "k4".into(), Uuid::new_v4());
        assert_eq!(
            r.get("a", "k1"),
            None,
            "two generations later it is forgotten"
        );
        assert!(r.get("a", "k4").is_some());
    }
}

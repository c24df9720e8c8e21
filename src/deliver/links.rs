//! Each broker destination's connection state, as its sender last found it.

/// Each broker destination's connection, as its sender last found it (`/admin/destinations`
/// shows it): absent until the first attempt, and for HTTP destinations.
#[derive(Debug, Default)]
pub struct Links(std::sync::Mutex<std::collections::HashMap<String, bool>>);

impl Links {
    /// Notes whether destination `id` is connected.
    pub fn set(&self, id: &str, connected: bool) {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match m.get_mut(id) {
            Some(c) => *c = connected,
            None => {
                m.insert(id.to_string(), connected);
            }
        }
    }

    /// Whether destination `id` was connected at its last attempt (`None`: not known).
    pub fn get(&self, id: &str) -> Option<bool> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }
}

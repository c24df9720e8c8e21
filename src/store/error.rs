//! [`StoreError`]: why the store could not do something.

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Too many writes are waiting; the sender should retry shortly.
    #[error("the store's write queue is full")]
    Busy,
    /// The store cannot take writes or reads right now (disk, lock, writer gone).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A client's `after` is not a cursor this store made.
    #[error("not a cursor of this store")]
    InvalidCursor,
}

/// The reason the last commit failed, cleared by the next successful one: what readiness and
/// the probe of a failed store look at, on every backend.
#[derive(Debug, Default)]
pub struct LastFailure(std::sync::Mutex<Option<String>>);

impl LastFailure {
    /// Records the outcome of a commit (`None`: it worked), saying so when the store recovers.
    pub fn set(&self, failure: Option<String>) {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failure.is_none() && last.is_some() {
            tracing::info!("the store commits again");
        }
        *last = failure;
    }

    /// Whether the last commit failed.
    pub fn failed(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }
}

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

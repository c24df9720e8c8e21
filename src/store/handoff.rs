//! What every backend's `append` does before its writer: a retry of a recently committed event
//! is answered from memory; anything else goes to the writer's bounded queue, and the request
//! waits for its commit.

use std::sync::{Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use super::error::StoreError;
use super::events::{Appended, NewEvent};
use super::ids::EventId;
use super::recent::RecentKeys;

/// Where the writer answers one event.
pub type Reply = oneshot::Sender<Result<Appended, StoreError>>;

/// Appends through a backend's writer: `recent` first, then `write(event, reply)` on `queue`
/// (503 material when the queue is full or the writer has stopped), then the commit's outcome.
///
/// # Errors
/// [`StoreError::Busy`] when the queue is full; [`StoreError::Unavailable`] when the writer has
/// stopped, or what the writer answered.
pub async fn append_through<M>(
    recent: &Mutex<RecentKeys>,
    queue: &mpsc::Sender<M>,
    event: NewEvent,
    write: impl FnOnce(NewEvent, Reply) -> M,
) -> Result<Appended, StoreError> {
    let seen = recent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&event.source, &event.dedupe_key);
    if let Some(event_id) = seen {
        return Ok(Appended {
            event_id: EventId(event_id),
            duplicate: true,
        });
    }
    let (reply, outcome) = oneshot::channel();
    match queue.try_send(write(event, reply)) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => return Err(StoreError::Busy),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            return Err(StoreError::Unavailable(
                "the store's writer has stopped".into(),
            ));
        }
    }
    outcome.await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "the store's writer stopped before committing".into(),
        ))
    })
}

//! What every backend's `append` does around its writer: a retry of a recently committed event
//! is answered from memory; anything else goes to the writer's bounded queue, and the request
//! waits for its commit; the writer answers each batch with [`answer_committed`] or
//! [`answer_failed`].

use std::sync::{Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use super::error::StoreError;
use super::events::{Appended, NewEvent};
use super::ids::EventId;
use super::recent::RecentKeys;

/// Where the writer answers one event.
pub type Reply = oneshot::Sender<Result<Appended, StoreError>>;

/// The events a writer took from its queue for one commit, each with where to answer it.
pub type Batch = Vec<(NewEvent, Reply)>;

/// After a batch's commit: each request gets its outcome (`results`, in the batch's order), and
/// its key goes into `recent` (only committed keys: a hit there means stored). Empties the
/// batch.
pub fn answer_committed(recent: &Mutex<RecentKeys>, batch: &mut Batch, results: Vec<Appended>) {
    let mut recent = recent.lock().unwrap_or_else(PoisonError::into_inner);
    for ((ev, reply), result) in batch.drain(..).zip(results) {
        recent.insert(&ev.source, ev.dedupe_key, result.event_id.0);
        // The requester may have timed out; the event is stored either way.
        let _ = reply.send(Ok(result));
    }
}

/// After a failed commit: logs it, and every request of the batch gets 503 material with the
/// reason. Empties the batch.
pub fn answer_failed(batch: &mut Batch, reason: &str) {
    tracing::error!(error = %reason, batch = batch.len(), "store commit failed; answering 503 to the batch");
    for (_, reply) in batch.drain(..) {
        let _ = reply.send(Err(StoreError::Unavailable(reason.to_string())));
    }
}

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

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

/// The first wait after a failed try to connect; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest wait between two tries to connect.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// A broker destination's connection: made at the first attempt, and again at the attempt
/// after it broke. While the broker cannot be reached, attempts fail at once (with why) for a
/// backoff of 1 s doubling up to 30 s, rather than each trying to connect. Its state is noted
/// in [`Links`] for the admin API.
pub(super) struct Connector<T> {
    id: String,
    /// The broker's name and its URL without credentials, for messages.
    broker: &'static str,
    shown: String,
    links: std::sync::Arc<Links>,
    state: tokio::sync::Mutex<State<T>>,
}

enum State<T> {
    Idle(std::time::Duration),
    Up(T),
    Down {
        until: std::time::Instant,
        wait: std::time::Duration,
        why: String,
    },
}

impl<T: Clone> Connector<T> {
    /// Destination `id`'s connector to `broker` at `shown` (a URL without its password).
    pub(super) fn new(
        id: &str,
        broker: &'static str,
        shown: String,
        links: std::sync::Arc<Links>,
    ) -> Self {
        Self {
            id: id.to_string(),
            broker,
            shown,
            links,
            state: tokio::sync::Mutex::new(State::Idle(FIRST_BACKOFF)),
        }
    }

    /// The connection, while `alive` says it works; else a new one from `connect` within
    /// `timeout` (unless the last try failed less than its backoff ago).
    pub(super) async fn get<F, Fut>(
        &self,
        timeout: std::time::Duration,
        alive: impl Fn(&T) -> bool,
        connect: F,
    ) -> Result<T, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let mut state = self.state.lock().await;
        let wait = match &*state {
            State::Up(t) if alive(t) => return Ok(t.clone()),
            State::Up(_) => FIRST_BACKOFF,
            State::Idle(wait) => *wait,
            State::Down { until, wait, why } => {
                if std::time::Instant::now() < *until {
                    return Err(why.clone());
                }
                *wait
            }
        };
        match tokio::time::timeout(timeout, connect()).await {
            Ok(Ok(t)) => {
                tracing::info!(destination = %self.id, "connected to {}", self.broker);
                self.links.set(&self.id, true);
                *state = State::Up(t.clone());
                Ok(t)
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e,
                    _ => format!("no connection to {} within {timeout:?}", self.shown),
                };
                tracing::warn!(destination = %self.id, error = %why, retry_in = ?wait, "{} cannot be reached", self.broker);
                self.links.set(&self.id, false);
                *state = State::Down {
                    until: std::time::Instant::now() + wait,
                    wait: (wait * 2).min(MAX_BACKOFF),
                    why: why.clone(),
                };
                Err(why)
            }
        }
    }

    /// The connection broke: the next attempt connects again.
    pub(super) async fn broken(&self) {
        self.links.set(&self.id, false);
        *self.state.lock().await = State::Idle(FIRST_BACKOFF);
    }

    /// Notes what an attempt found of the connection.
    pub(super) fn note(&self, connected: bool) {
        self.links.set(&self.id, connected);
    }
}

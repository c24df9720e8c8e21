//! Signals: the one that stops hookgate (SIGTERM, Ctrl-C), and SIGXFSZ, which must not.

use std::time::Duration;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Turns SIGXFSZ (a write past the process's file size limit, `RLIMIT_FSIZE`) into a failed
/// write: by default the signal kills the process, which would lose every request in flight. A
/// failed write fails the commit, so requests get 503 and the store recovers when it can write.
pub fn catch_file_size_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    let mut last: Option<tokio::time::Instant> = None;
                    while s.recv().await.is_some() {
                        // Every failed write raises one: say so once a minute at most.
                        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                            last = Some(tokio::time::Instant::now());
                            tracing::warn!(
                                "a write went past the file size limit (SIGXFSZ); the store answers 503 until it can write again"
                            );
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGXFSZ cannot be caught; a file size limit would stop hookgate")
            }
        }
    }
}

//! Building and running the application: listeners, routers, the tower stack, shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use http::{HeaderName, StatusCode};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::admin::{self, AdminState};
use crate::config::{Scheme, Settings};
use crate::error::{problem, unavailable};
use crate::serve;
use crate::sources::{self, SourceState};
use crate::store::{self, Store};
use crate::telemetry;
use crate::verify::{self, SecretDigests, bearer::Bearer};

/// A built application: listeners bound, store open, routers ready.
pub struct Application {
    public: TcpListener,
    admin: TcpListener,
    public_router: Router,
    admin_router: Router,
    store: Arc<dyn Store>,
    shutdown_timeout: Duration,
    limits: serve::Limits,
}

/// Connections the admin listener serves at once (it is internal: scrapers and operators).
const ADMIN_MAX_CONNECTIONS: usize = 256;

impl Application {
    /// Opens the store and binds both listeners (port 0 picks a free port, for tests).
    ///
    /// # Errors
    /// When the store cannot be opened or a listener cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        catch_file_size_signal();
        let store = store::connect(&settings.store).await?;
        let metrics = telemetry::metrics_handle();
        let mut sources = Vec::with_capacity(settings.sources.len());
        for (id, s) in &settings.sources {
            if s.verify.scheme == Scheme::None {
                tracing::warn!(source = %id, path = %s.path, "source has verify.scheme `none`: anyone who can reach it can store events");
            }
            sources.push((
                s.path.clone(),
                Arc::new(SourceState::new(id, s, &settings, store.clone())),
            ));
        }
        let public_router = public_router(&settings, &sources, store.clone());
        let token = settings
            .admin
            .token
            .as_ref()
            .map(|t| t.expose_secret().as_bytes())
            .unwrap_or_default();
        let admin_router = admin::router(AdminState {
            store: store.clone(),
            token: Arc::new(Bearer::new(SecretDigests::new([token]))),
            metrics,
        })
        // The path only: a query string may carry what a caller should not have put there.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::debug_span!("admin", method = %req.method(), path = %req.uri().path())
        }));
        let public = TcpListener::bind(&settings.server.listen)
            .await
            .with_context(|| {
                format!("server.listen: cannot listen on {}", settings.server.listen)
            })?;
        let admin = TcpListener::bind(&settings.admin.listen)
            .await
            .with_context(|| format!("admin.listen: cannot listen on {}", settings.admin.listen))?;
        Ok(Self {
            public,
            admin,
            public_router,
            admin_router,
            store,
            shutdown_timeout: settings.server.shutdown_timeout.0,
            limits: serve::Limits {
                header_timeout: settings.server.request_timeout.0,
                max_connections: settings.server.max_connections,
            },
        })
    }

    /// The public listener's port.
    pub fn port(&self) -> u16 {
        self.public
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The admin listener's port.
    pub fn admin_port(&self) -> u16 {
        self.admin
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (up to `server.shutdown_timeout`), commits every queued write and returns.
    ///
    /// # Errors
    /// When a listener fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        tracing::info!(
            public = %self.public.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            admin = %self.admin.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "hookgate is listening"
        );
        let mut public = tokio::spawn(serve::serve(
            self.public,
            self.public_router,
            self.limits,
            token.clone(),
        ));
        let mut admin = tokio::spawn(serve::serve(
            self.admin,
            self.admin_router,
            serve::Limits {
                max_connections: ADMIN_MAX_CONNECTIONS,
                ..self.limits
            },
            token.clone(),
        ));
        let upkeep = tokio::spawn(async {
            let handle = telemetry::metrics_handle();
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
        let mut failure = None;
        tokio::select! {
            () = shutdown => tracing::info!("shutdown requested: refusing new connections, finishing in-flight requests"),
            r = &mut public => failure = Some(format!("the public listener stopped: {r:?}")),
            r = &mut admin => failure = Some(format!("the admin listener stopped: {r:?}")),
        }
        token.cancel();
        let drain = async {
            if !public.is_finished() {
                let _ = (&mut public).await;
            }
            if !admin.is_finished() {
                let _ = (&mut admin).await;
            }
        };
        if tokio::time::timeout(self.shutdown_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?self.shutdown_timeout, "in-flight requests outlived server.shutdown_timeout; cutting them off");
            public.abort();
            admin.abort();
        }
        upkeep.abort();
        self.store.close().await;
        tracing::info!("all pending writes committed; stopped");
        match failure {
            Some(f) => Err(anyhow::anyhow!(f)),
            None => Ok(()),
        }
    }
}

fn public_router(
    settings: &Settings,
    sources: &[(String, Arc<SourceState>)],
    store: Arc<dyn Store>,
) -> Router {
    let mut router = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz).with_state(store));
    let mut sensitive: Vec<HeaderName> = vec![
        http::header::AUTHORIZATION,
        http::header::COOKIE,
        HeaderName::from_static(verify::abp_signature::HEADER),
        HeaderName::from_static(verify::api_key::DEFAULT_HEADER),
    ];
    for (path, src) in sources {
        if let Some(h) = src.verifier.credential_header() {
            sensitive.push(h);
        }
        let r = Router::new()
            .route(path, post(sources::receive))
            .route_layer(from_fn_with_state(src.clone(), verify::verify_request))
            .route_layer(from_fn_with_state(src.clone(), sources::track))
            .with_state(src.clone());
        router = router.merge(r);
    }
    let timeout = settings.server.request_timeout.0;
    router
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                "Not Found",
                "no source is configured at this path",
            )
        })
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new(sensitive))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let request_id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            tracing::info_span!(
                                "request",
                                request_id = %request_id,
                                method = %req.method(),
                                path = %req.uri().path(),
                                source = tracing::field::Empty,
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                        .on_failure(DefaultOnFailure::new().level(Level::WARN)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_| {
                    problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                        "the request could not be handled",
                    )
                }))
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(settings.server.max_concurrent_requests)
                .layer(from_fn_with_state(timeout, request_timeout)),
        )
}

async fn overloaded(err: BoxError) -> Response {
    if err.is::<tower::load_shed::error::Overloaded>() {
        unavailable("hookgate is at its concurrency limit; retry shortly", 1)
    } else {
        tracing::error!(error = %err, "unexpected middleware error");
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the request could not be handled",
        )
    }
}

async fn request_timeout(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => problem(
            StatusCode::REQUEST_TIMEOUT,
            "Request Timeout",
            "the request took longer than the server's request timeout",
        ),
    }
}

async fn readyz(State(store): State<Arc<dyn Store>>) -> Response {
    match store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            unavailable("the store is not reachable", 5)
        }
    }
}

/// Turns SIGXFSZ (a write past the process's file size limit, `RLIMIT_FSIZE`) into a failed
/// write: by default the signal kills the process, which would lose every request in flight. A
/// failed write fails the commit, so requests get 503 and the store recovers when it can write.
fn catch_file_size_signal() {
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

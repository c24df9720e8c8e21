//! Building and running the application: the configuration checked whole, the store, the
//! source routes, both listeners, and the order things stop in.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use http::HeaderName;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::config::{self, ConfigErrors, LoadOptions, Scheme, Settings};
use crate::deliver;
use crate::http::{health, serve, stack};
use crate::receive::{Hooks, Routes, Source};
use crate::shutdown::catch_file_size_signal;
use crate::sources;
use crate::store::{self, Store};
use crate::telemetry;
use crate::verify::{self, SecretDigests, bearer::Bearer};

/// Loads the configuration and checks all of it, as `serve` and `check-config` do: what
/// [`fn@config::load`] checks and each source's kind and options ([`sources::check`]), every
/// error of both in one list.
///
/// # Errors
/// Every problem found, each naming its field.
pub fn load_settings(opts: &LoadOptions) -> Result<Settings, ConfigErrors> {
    checked(config::read_draft(opts), opts.environment().as_deref()).finish()
}

/// [`load_settings`] with `yaml` as the only file and `env` as the whole environment.
///
/// # Errors
/// Every problem found, each naming its field.
pub fn load_settings_from_str(
    yaml: &str,
    env: &HashMap<String, String>,
) -> Result<Settings, ConfigErrors> {
    let draft = config::read_draft_from_str(yaml, env);
    checked(draft, env.get(config::ENV_NAME_VAR).map(String::as_str)).finish()
}

/// What `hookgate check-config` does: [`load_settings`], plus what `serve` would only find out
/// when it opens the store (a folder that cannot be created, a file that is not a hookgate
/// database), all reported in one run. With `connect` (`--connect`), it also connects to a
/// PostgreSQL store's database (and runs nothing there): an unreachable one is a `store.url`
/// error.
///
/// # Errors
/// Every problem found, each naming its field.
pub fn check_config(opts: &LoadOptions, connect: bool) -> Result<Settings, ConfigErrors> {
    let mut draft = checked(config::read_draft(opts), opts.environment().as_deref());
    if let Some(settings) = &draft.settings {
        let mut problems = store::connect::check(&settings.store);
        if connect && problems.is_empty() {
            // Called from `main`, outside any runtime: a small one of its own.
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => problems.extend(rt.block_on(store::connect::reach(&settings.store))),
                Err(e) => problems.push(format!(
                    "store.url: cannot check the connection (no async runtime: {e})"
                )),
            }
        }
        draft.add(problems);
    }
    draft.finish()
}

fn checked(mut draft: config::Draft, environment: Option<&str>) -> config::Draft {
    if let Some(settings) = &draft.settings {
        let mut problems = settings.problems(Settings::is_production(environment));
        problems.extend(sources::check(settings));
        draft.add(problems);
    }
    draft
}

/// A built application: listeners bound, store open, routers ready.
pub struct Application {
    public: TcpListener,
    admin: TcpListener,
    public_router: Router,
    admin_router: Router,
    routes: Routes,
    store: Arc<dyn Store>,
    /// A delivery worker per destination, started by `run_until_stopped`.
    workers: Vec<deliver::worker::Worker>,
    /// Stops the listeners and ends the admin API's long polls.
    stop: CancellationToken,
    shutdown_timeout: Duration,
    limits: serve::Limits,
    /// `store.retention`: the pruner's age limit (zero: no pruner).
    retention: Duration,
}

/// Connections the admin listener serves at once (it is internal: scrapers, operators, and
/// consumers following the feed, each long poll holding one connection for up to 30 s; a waiting
/// poll costs a few KiB and no database work, so a thousand fit).
const ADMIN_MAX_CONNECTIONS: usize = 1024;

impl Application {
    /// Opens the store and binds both listeners (port 0 picks a free port, for tests).
    ///
    /// # Errors
    /// When the store cannot be opened or a listener cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        catch_file_size_signal();
        for warning in settings.warnings() {
            tracing::warn!("{warning}");
        }
        // The recorder first: the store shows its size as it opens.
        let metrics = telemetry::metrics_handle();
        let destinations = settings
            .resolved_destinations()
            .map_err(|errors| anyhow::anyhow!(errors.join("; ")))?;
        let links = Arc::new(deliver::Links::default());
        let workers = deliver::workers(&destinations, &links)?;
        let store = store::connect(&settings.store).await?;
        let ids: Vec<String> = destinations.iter().map(|d| d.id.clone()).collect();
        store
            .register_destinations(&ids)
            .await
            .context("the destinations could not be recorded in the store")?;
        // Registered hooks (`/hooks/{id}`), served from the store with `server.body_limit`.
        let hooks = Hooks::new(store.clone(), &destinations, settings.server.body_limit.0);
        let routes = Routes::default().with_hooks(hooks.clone());
        let mut sensitive: Vec<HeaderName> = vec![
            http::header::AUTHORIZATION,
            http::header::COOKIE,
            HeaderName::from_static(verify::abp_signature::HEADER),
            HeaderName::from_static(verify::api_key::DEFAULT_HEADER),
        ];
        for (id, s) in &settings.sources {
            if s.verify.scheme.scheme() == Scheme::None {
                tracing::warn!(source = %id, path = %s.path, "source has verify.scheme `none`: anyone who can reach it can store events");
            }
            let kind =
                sources::build_named(id, s).map_err(|errors| anyhow::anyhow!(errors.join("; ")))?;
            let source = Source::new(id, s, kind, settings.body_limit_for(s), store.clone())
                .with_destinations(&destinations);
            if let Some(h) = source.credential_header() {
                sensitive.push(h.clone());
            }
            routes
                .add(Arc::new(source))
                .with_context(|| format!("sources.{id}.path"))?;
        }
        let public_router = stack::public(
            health::router(store.clone()).merge(routes.router()),
            &settings.server,
            sensitive,
        );
        let token = settings
            .admin
            .token
            .as_ref()
            .map(|t| t.expose_secret().as_bytes())
            .unwrap_or_default();
        // Cancelled when the shutdown future completes (`run_until_stopped`).
        let stop = CancellationToken::new();
        let admin_router = stack::admin(admin::router(AdminState {
            store: store.clone(),
            token: Arc::new(Bearer::new(SecretDigests::new([token]))),
            metrics,
            stop: stop.clone(),
            destinations: Arc::new(destinations),
            sources: Arc::new(
                settings
                    .sources
                    .iter()
                    .map(|(id, s)| admin::SourceSummary {
                        id: id.clone(),
                        kind: s.kind.clone(),
                        path: s.path.clone(),
                    })
                    .collect(),
            ),
            links,
            forget_hook: Arc::new(move |id| hooks.forget(id)),
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
            routes,
            store,
            workers,
            stop,
            shutdown_timeout: settings.server.shutdown_timeout.0,
            retention: settings.store.retention.0,
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

    /// The table of source routes: a source added here is served at once.
    pub fn routes(&self) -> Routes {
        self.routes.clone()
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
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
        let token = self.stop;
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
        let pruner = tokio::spawn({
            let (store, stop) = (self.store.clone(), token.clone());
            async move { store::retention::run_pruner(&*store, self.retention, stop).await }
        });
        // Delivery stops with the listeners, so that the whole stop takes `shutdown_timeout` at
        // most: no new attempt starts, those in flight finish meanwhile or are given back.
        // Requests in flight may still queue deliveries: they are attempted at the next start.
        let delivery_stop = CancellationToken::new();
        let delivery = deliver::start(
            self.store.clone(),
            self.workers,
            delivery_stop.clone(),
            self.shutdown_timeout,
        )
        .context("the delivery thread could not be started")?;
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
        delivery_stop.cancel();
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
        // Delivery's own grace (the same timeout) ran alongside the listeners' drain.
        if let Some(thread) = delivery {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        // The pruner stops between two batches (each commits whole); then the store closes.
        let _ = pruner.await;
        self.store.close().await;
        // The last spans (delivery attempts cut off above included) go to the collector.
        telemetry::traces::shutdown().await;
        tracing::info!("all pending writes committed; stopped");
        match failure {
            Some(f) => Err(anyhow::anyhow!(f)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The whole check: what `config` checks and what each kind checks, in one run.

    use super::*;
    use crate::config::load::tests::{MINIMAL, errors_of, opts, write};

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "a.yaml",
            &MINIMAL.replace("path: /kratos", "path: /kratos\n    pth: /typo"),
        );
        let errs = errors_of(load_settings(&opts(vec![f], &[])));
        assert!(
            errs[0].starts_with("sources.kratos.pth: unknown field `pth`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn cross_field_mistakes_are_all_reported() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
admin: { token: t }
sources:
  Bad:
    kind: identus
    path: identus
    verify: { scheme: bearer, header: X-Key, secrets: [""] }
    events: [A]
  b:
    kind: kratos
    path: /k
    verify: { scheme: api_key, in: cookie, secrets: [k] }
"#;
        let f = write(dir.path(), "a.yaml", text);
        let errs = errors_of(load_settings(&opts(vec![f], &[])));
        for want in [
            "sources.Bad: a source id may hold only",
            "sources.Bad.path: must start with `/`",
            "sources.Bad.events: only `abp` sources",
            "sources.Bad.verify.header: only `api_key`",
            "sources.Bad.verify.secrets[0]: must not be empty",
            "sources.b.verify.cookie: `in: cookie` needs the cookie name",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "missing {want:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn an_unknown_kind_is_named_with_the_kinds_there_are() {
        let errs = errors_of(load_settings_from_str(
            &MINIMAL.replace("kind: kratos", "kind: github"),
            &HashMap::new(),
        ));
        assert!(
            errs[0].starts_with("sources.kratos.kind: unknown variant `github`"),
            "{}",
            errs[0]
        );
        let errs = errors_of(load_settings_from_str(
            &MINIMAL.replace("path: /kratos", "path: /kratos\n    pth: /typo"),
            &HashMap::new(),
        ));
        assert!(
            errs[0].starts_with("sources.kratos.pth: unknown field `pth`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn every_unknown_key_of_every_source_is_reported_in_one_run() {
        let text = MINIMAL.replace(
            "path: /kratos",
            "path: /kratos\n    pth: /typo\n    evnts: [A]\n    envelope: false",
        );
        let errs = errors_of(load_settings_from_str(&text, &HashMap::new()));
        for want in [
            "sources.kratos.pth: unknown field",
            "sources.kratos.evnts: unknown field",
            "sources.kratos.envelope: only `abp` sources take `envelope`",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "missing {want:?} in {errs:#?}"
            );
        }
    }
}

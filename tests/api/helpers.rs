//! `spawn_app()` and friends: a hookgate on random ports with its own SQLite file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hookgate::config::{LoadOptions, Settings};
use hookgate::sign::{self, SignScheme};
use hookgate::startup::{Application, load_settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const KRATOS_KEY: &str = "kratos-key-new-0001";
pub const KRATOS_KEY_OLD: &str = "kratos-key-old-0001";
pub const IDENTUS_TOKEN: &str = "identus-token-0001";
pub const ABP_SECRET: &str = "whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// The configuration every test starts from: the three senders, plus sources that show other
/// schemes on other kinds.
pub const TEST_CONFIG: &str = r#"
server:
  listen: 127.0.0.1:0
  request_timeout: 2s
  shutdown_timeout: 5s
admin:
  listen: 127.0.0.1:0
  token: admin-token-for-tests
log:
  level: warn
sources:
  kratos:
    kind: kratos
    path: /kratos/sync-identity
    verify: { scheme: api_key, header: X-Api-Key, secrets: [kratos-key-new-0001, kratos-key-old-0001] }
  identus:
    kind: identus
    path: /identus/events
    verify: { scheme: bearer, secrets: [identus-token-0001] }
  abp:
    kind: abp
    path: /abp/webhooks
    verify: { scheme: abp_signature, secrets: ["whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b"] }
  abp_filtered:
    kind: abp
    path: /abp/filtered
    verify: { scheme: abp_signature, secrets: ["whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b"] }
    events: [TenantDeleted]
  abp_bare:
    kind: abp
    path: /abp/bare
    envelope: false
    verify: { scheme: abp_signature, secrets: ["whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b"] }
  kratos_cookie:
    kind: kratos
    path: /kratos/cookie
    verify: { scheme: api_key, in: cookie, cookie: hook_key, secrets: [cookie-key-000001] }
  kratos_basic:
    kind: kratos
    path: /kratos/basic
    verify: { scheme: basic, secrets: ["kratos:s3cret"] }
  identus_by_key:
    kind: identus
    path: /identus/keyed
    body_limit: 2KiB
    verify: { scheme: api_key, header: X-Hook-Key, secrets: [identus-api-key-0001] }
  open:
    kind: identus
    path: /identus/open
    verify: { scheme: none }
"#;

/// Loads [`TEST_CONFIG`] with the store in `dir`, without reading the process environment.
pub fn test_settings(dir: &Path) -> Settings {
    let file = dir.join("hookgate.yaml");
    std::fs::write(&file, TEST_CONFIG).unwrap();
    let mut s = load_settings(&LoadOptions {
        files: vec![file],
        config_dir: None,
        env: Some(HashMap::new()),
    })
    .unwrap();
    s.store.url = match postgres_base() {
        Some(base) => {
            drop_stale_schemas(&base);
            let schema = schema_for(dir);
            pg_execute(&base, &format!("CREATE SCHEMA IF NOT EXISTS {schema}"));
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-csearch_path%3D{schema}")
        }
        None => format!("sqlite://{}", dir.join("hookgate.db").display()),
    };
    s
}

/// The test server's URL when `HOOKGATE_TEST_BACKEND=postgres`: every [`TestApp`] then stores
/// in a schema of its own there (one per store folder, so a restart in the same folder finds
/// its events), dropped when an app of [`spawn_app`] / [`spawn_app_with`] is dropped.
pub fn postgres_base() -> Option<String> {
    match std::env::var("HOOKGATE_TEST_BACKEND").as_deref() {
        Ok("postgres") => Some(
            std::env::var("HOOKGATE_TEST_POSTGRES_URL")
                .expect("HOOKGATE_TEST_BACKEND=postgres needs HOOKGATE_TEST_POSTGRES_URL"),
        ),
        _ => None,
    }
}

/// For a test about SQLite itself (its file, its locks, the binary on its default store): true,
/// after saying so, when the suite runs on PostgreSQL, and the test returns at once.
pub fn sqlite_only(test: &str) -> bool {
    let skip = postgres_base().is_some();
    if skip {
        println!("{test}: SQLite only, skipped on PostgreSQL");
    }
    skip
}

/// The URL of a [`TestApp`]'s store (on PostgreSQL: with `search_path` set to its schema).
pub fn store_url(app: &TestApp) -> String {
    match postgres_base() {
        Some(base) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!(
                "{base}{sep}options=-csearch_path%3D{}",
                schema_for(&app.dir)
            )
        }
        None => format!("sqlite://{}", app.dir.join("hookgate.db").display()),
    }
}

/// The schema of the store folder `dir` on PostgreSQL: `hg_api_PID_HASH`, so that a later run
/// can drop what a finished one left (apps of [`spawn_in`] outlive their guard-less folder).
fn schema_for(dir: &Path) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("hg_api_{}_{:016x}", std::process::id(), h.finish())
}

/// Once per test process: drops the schemas that test processes of this machine which have
/// ended left behind.
fn drop_stale_schemas(base: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let base = base.to_string();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let Ok((client, conn)) =
                    tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                else {
                    return;
                };
                let driver = tokio::spawn(conn);
                let names: Vec<String> = client
                    .query(
                        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hg\\_api\\_%'",
                        &[],
                    )
                    .await
                    .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                    .unwrap_or_default();
                for name in names {
                    let pid = name.split('_').nth(2).unwrap_or_default();
                    let ended = !pid.is_empty()
                        && pid.bytes().all(|b| b.is_ascii_digit())
                        && !Path::new(&format!("/proc/{pid}")).exists();
                    if ended {
                        let _ = client
                            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                            .await;
                    }
                }
                drop(client);
                let _ = driver.await;
            });
        })
        .join();
    });
}

/// Runs `sql` on the test server, from a thread of its own (callers may be on a runtime).
pub fn pg_execute(base: &str, sql: &str) {
    let (base, sql) = (base.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .expect("the PostgreSQL test server answers");
            let driver = tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap();
            drop(client);
            let _ = driver.await;
        });
    })
    .join()
    .unwrap();
}

/// Drops the schema of a store folder on PostgreSQL when dropped.
pub struct PgSchemaGuard {
    /// The test server's URL.
    pub base: String,
    /// The schema's name.
    pub schema: String,
}

impl Drop for PgSchemaGuard {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        let base = self.base.clone();
        // Never a panic in a drop: a schema left behind is only clutter.
        let _ = std::panic::catch_unwind(move || pg_execute(&base, &sql));
    }
}

/// A running application.
pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    /// The table of source routes: what is added here is served at once.
    pub routes: hookgate::receive::Routes,
    /// The running application's store.
    pub store: std::sync::Arc<dyn hookgate::store::Store>,
    _pg: Option<PgSchemaGuard>,
    _tmp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut app = spawn_in(&dir, customize).await;
    app._pg = postgres_base().map(|base| PgSchemaGuard {
        base,
        schema: schema_for(&dir),
    });
    app._tmp = Some(tmp);
    app
}

/// Starts an application whose store lives in `dir` (kept after it stops, for restart tests).
pub async fn spawn_in(dir: &Path, customize: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        hookgate::telemetry::init(&hookgate::config::LogSettings {
            level: "debug".into(),
            ..Default::default()
        });
    }
    let mut settings = test_settings(dir);
    customize(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let port = app.port();
    let admin_port = app.admin_port();
    let routes = app.routes();
    let store = app.store();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
        port,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        dir: dir.to_path_buf(),
        routes,
        store,
        _pg: None,
        _tmp: None,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// Stops the application as SIGTERM would and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.into());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// GET on the public listener.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn kratos(&self, body: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut h = vec![
            ("content-type", "application/json"),
            ("x-api-key", KRATOS_KEY),
        ];
        h.extend_from_slice(extra);
        self.post("/kratos/sync-identity", &h, body).await
    }

    pub async fn identus(&self, body: &str) -> reqwest::Response {
        let auth = format!("Bearer {IDENTUS_TOKEN}");
        self.post(
            "/identus/events",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            body,
        )
        .await
    }

    /// Posts to an ABP path with the headers `hookgate sign` makes, as ABP would send them.
    pub async fn abp_at(&self, path: &str, body: &str) -> reqwest::Response {
        let headers = sign::headers(
            SignScheme::AbpSignature,
            ABP_SECRET,
            body.as_bytes(),
            "X-Api-Key",
            None,
        );
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.to_string());
        for (k, v) in headers.iter().filter(|(k, _)| k != "Content-Type") {
            req = req.header(k.as_str(), v.as_str());
        }
        // ABP's StringContent(body, UTF8, "application/json").
        req.header("content-type", "application/json; charset=utf-8")
            .send()
            .await
            .unwrap()
    }

    pub async fn abp(&self, body: &str) -> reqwest::Response {
        self.abp_at("/abp/webhooks", body).await
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let res = self.admin_get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    /// Every stored event (all pages).
    pub async fn all_events(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .admin_json(&format!("/admin/events?limit=1000&after={after}"))
                .await;
            out.extend(page["events"].as_array().unwrap().iter().cloned());
            if page["more"] != true {
                return out;
            }
            after = page["next"].as_str().unwrap().to_string();
        }
    }

    /// Opens a raw connection to the public listener (for slow and malformed requests).
    pub async fn raw(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).await.unwrap()
    }
}

/// Reads what the server sends until it closes the connection or `wait` passes.
pub async fn read_response(stream: &mut TcpStream, wait: Duration) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end].lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    });
                    if let Some(len) = len {
                        if buf.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The head of an Identus POST announcing `len` body bytes, for requests sent piece by piece.
pub fn identus_head(len: usize) -> String {
    format!(
        "POST /identus/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {IDENTUS_TOKEN}\r\ncontent-length: {len}\r\n\r\n"
    )
}

pub async fn write_all(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

/// A Kratos body the way go-jsonnet manifests it: indented and multi-line.
pub fn kratos_body(identity: &str) -> String {
    format!("{{\n   \"identity\": {identity}\n}}\n")
}

/// The Ory webhook guide's registration identity (docs/senders.md, Ory Kratos body).
pub const GUIDE_IDENTITY: &str = include_str!("../fixtures/kratos_guide_identity.json");

/// Identus sample events, one per typed kind (docs/senders.md, Identus event kinds).
pub const IDENTUS_CONNECTION: &str = include_str!("../fixtures/identus_connection.json");
pub const IDENTUS_CREDENTIAL: &str = include_str!("../fixtures/identus_credential.json");
pub const IDENTUS_PRESENTATION: &str = include_str!("../fixtures/identus_presentation.json");
pub const IDENTUS_DID: &str = include_str!("../fixtures/identus_did.json");

/// A connection event with its own ids, state and timestamp.
pub fn connection_event(event_id: &str, connection_id: &str, state: &str, ts: &str) -> String {
    IDENTUS_CONNECTION
        .replace("7f1e2b1a-3c1d-4a55-9f0e-2d0c6a4b9e01", event_id)
        .replace(
            "\"connectionId\":\"0527aea1-d131-3948-a34d-03af39aba8b4\"",
            &format!("\"connectionId\":\"{connection_id}\""),
        )
        .replace("ConnectionResponseSent", state)
        .replace("2024-05-01T10:20:30.123456Z", ts)
}

/// docs/senders.md, ABP test vectors 1 and 2: two attempts of one ABP event.
pub const ABP_BODY_1: &str = include_str!("../fixtures/abp_body_1.json");
pub const ABP_SIG_1: &str = "sha256=5E-02-C9-FE-C9-25-7D-71-76-F0-2D-59-A1-41-45-4F-3A-A1-B1-09-64-15-4A-D2-8D-8B-E3-F5-E6-F3-C5-7F";
pub const ABP_BODY_2: &str = include_str!("../fixtures/abp_body_2.json");

/// The event id an accepted answer carries, checked against its header.
pub async fn accepted(res: reqwest::Response) -> (String, bool) {
    assert_eq!(res.status(), 200);
    let header = res
        .headers()
        .get("hookgate-event-id")
        .expect("Hookgate-Event-Id")
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["event_id"], header.as_str());
    (header, body["duplicate"].as_bool().unwrap())
}

/// The real binary, started by [`start_binary`]; killed if dropped while running (a failing
/// test leaves no process behind).
pub struct Binary {
    child: Option<std::process::Child>,
    /// `host:port` of the public listener.
    pub public: String,
    /// `host:port` of the admin listener.
    pub admin: String,
    /// Its stdout, a JSON log line each.
    pub logs: std::sync::mpsc::Receiver<String>,
}

/// Starts the real binary on [`TEST_CONFIG`] with JSON logs at info and its store in `dir`,
/// with `env` set (`HOOKGATE__SERVER__…` overrides) and run through `wrapper` (a command that
/// execs the rest, such as `prlimit --fsize=N --`). Returns once it listens. The caller waits
/// for it (after SIGTERM or SIGKILL).
pub fn start_binary(dir: &Path, env: &[(&str, &str)], wrapper: &[&str]) -> Binary {
    start_binary_with(dir, env, wrapper, "")
}

/// [`start_binary`] with `extra` appended to the configuration file it writes: top-level YAML
/// blocks (such as `destinations:`), since [`TEST_CONFIG`]'s keys start at column 0. The store
/// is `store.url` of the file (SQLite in `dir`) unless `env` overrides it
/// (`HOOKGATE__STORE__URL`).
#[allow(clippy::zombie_processes)]
pub fn start_binary_with(
    dir: &Path,
    env: &[(&str, &str)],
    wrapper: &[&str],
    extra: &str,
) -> Binary {
    let config = TEST_CONFIG.replace("level: warn", "level: info\n  format: json")
        + &format!(
            "store:\n  url: sqlite://{}\n",
            dir.join("hookgate.db").display()
        )
        + extra;
    let file = dir.join("bin.yaml");
    std::fs::write(&file, config).unwrap();
    let bin = env!("CARGO_BIN_EXE_hookgate");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => std::process::Command::new(bin),
    };
    cmd.args(["--config", file.to_str().unwrap(), "serve"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    forward_lines(child.stdout.take().unwrap(), tx);
    // Killed on drop from here on, if it never says it listens.
    let mut bin = Binary {
        child: Some(child),
        public: String::new(),
        admin: String::new(),
        logs: rx,
    };
    loop {
        let line = bin
            .logs
            .recv_timeout(Duration::from_secs(30))
            .expect("hookgate logs that it listens (at info)");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "hookgate is listening" {
            bin.public = v["fields"]["public"].as_str().unwrap().to_string();
            bin.admin = v["fields"]["admin"].as_str().unwrap().to_string();
            return bin;
        }
    }
}

impl Binary {
    /// A client for the admin API of this process.
    pub async fn admin_json(&self, client: &reqwest::Client, path: &str) -> serde_json::Value {
        let res = client
            .get(format!("http://{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    /// Every stored event (all pages), from the admin API.
    pub async fn all_events(&self, client: &reqwest::Client) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .admin_json(client, &format!("/admin/events?limit=1000&after={after}"))
                .await;
            out.extend(page["events"].as_array().unwrap().iter().cloned());
            if page["more"] != true {
                return out;
            }
            after = page["next"].as_str().unwrap().to_string();
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(std::process::Child::id).unwrap()
    }

    /// Sends a signal (`TERM`, `KILL`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the process to exit.
    pub async fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The Prometheus text of the admin listener at `admin` (`http://host:port`), which must be 200.
pub async fn metrics_text(client: &reqwest::Client, admin: &str) -> String {
    let res = client.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET /metrics");
    res.text().await.unwrap()
}

/// Sends each line `out` writes to `lines`, from a thread of its own, until either side ends.
pub fn forward_lines(
    out: impl std::io::Read + Send + 'static,
    lines: std::sync::mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
}

/// Polls `path` on the admin API until `done` holds (or panics after `within`).
pub async fn eventually(
    app: &TestApp,
    path: &str,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let v = app.admin_json(path).await;
        if done(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never got there: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

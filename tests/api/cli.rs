//! The command line: check-config and sign, as a user runs them.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::helpers::*;

fn hookgate(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn check_config_accepts_a_valid_file_and_names_every_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, TEST_CONFIG).unwrap();
    let out = hookgate(
        &["--config", good.to_str().unwrap(), "check-config"],
        &[],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("configuration is valid: 9 source(s)")
    );

    let bad = dir.path().join("bad.yaml");
    let check_bad = |text: String| {
        std::fs::write(&bad, text).unwrap();
        let out = hookgate(
            &["--config", bad.to_str().unwrap(), "check-config"],
            &[],
            b"",
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check_bad(
        TEST_CONFIG
            .replace("secrets: [identus-token-0001]", "secrets: []")
            .replace("request_timeout: 2s", "request_timeout: 2 fortnights"),
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("server.request_timeout: `2 fortnights` is not a duration"),
        "{err}"
    );

    let (code, err) =
        check_bad(TEST_CONFIG.replace("secrets: [identus-token-0001]", "secrets: []"));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("sources.identus.verify.secrets: at least one secret is required"),
        "{err}"
    );
}

#[test]
fn a_production_start_refuses_the_development_secrets_of_the_default_config() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let default = format!("{dir}/config/default.yaml");
    let out = hookgate(&["--config", &default, "check-config"], &[], b"");
    assert!(
        out.status.success(),
        "the default config runs as-is: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = hookgate(
        &["--config", &default, "check-config"],
        &[("HOOKGATE_ENV", "production")],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "admin.token",
        "sources.kratos.verify.secrets[0]",
        "sources.identus.verify.secrets[0]",
        "sources.abp.verify.secrets[0]",
    ] {
        assert!(
            err.contains(&format!("{field}: is a development or placeholder value")),
            "{field} in {err}"
        );
    }
    assert!(
        !err.contains("dev-only-kratos-api-key"),
        "errors never echo a secret: {err}"
    );

    // With the production overlay, a missing variable is named.
    let production = format!("{dir}/config/production.yaml");
    let out = hookgate(
        &[
            "--config",
            &default,
            "--config",
            &production,
            "check-config",
        ],
        &[("HOOKGATE_ENV", "production")],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("environment variable KRATOS_WEBHOOK_API_KEY is not set")
    );
}

#[test]
fn sign_prints_the_headers_abp_would_send_for_the_body_on_stdin() {
    let out = hookgate(
        &["sign", "abp_signature", "--secret", ABP_SECRET],
        &[],
        ABP_BODY_1.as_bytes(),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        format!("Content-Type: application/json\nabp-webhook-signature: {ABP_SIG_1}\n")
    );

    let out = hookgate(
        &["sign", "bearer"],
        &[("HOOKGATE_SIGN_SECRET", "t0k")],
        b"{}",
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Content-Type: application/json\nAuthorization: Bearer t0k\n"
    );
}

/// The development secrets' variables, removed so that the defaults' fallbacks apply.
const SECRET_VARS: [&str; 4] = [
    "HOOKGATE_ADMIN_TOKEN",
    "KRATOS_WEBHOOK_API_KEY",
    "IDENTUS_WEBHOOK_TOKEN",
    "ABP_WEBHOOK_SECRET",
];

/// The binary in the repository's folder, on its own `config/`, with `env` set.
fn hookgate_here(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("HOOKGATE_ENV")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in SECRET_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn a_hookgate_env_with_no_file_stops_serve_and_check_config() {
    for command in ["check-config", "serve"] {
        let out = hookgate_here(&[command], &[("HOOKGATE_ENV", "prod")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("HOOKGATE_ENV: `prod` names no file config/prod.yaml (known: production)"),
            "{command}: {err}"
        );
    }
}

#[test]
fn the_default_config_on_a_reachable_address_refuses_every_development_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/h.db", dir.path().display());
    let out = hookgate_here(
        &["serve"],
        &[
            ("HOOKGATE__SERVER__LISTEN", "0.0.0.0:0"),
            ("HOOKGATE__STORE__URL", &store),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for (field, var) in [
        ("admin.token", "HOOKGATE_ADMIN_TOKEN"),
        ("sources.kratos.verify.secrets[0]", "KRATOS_WEBHOOK_API_KEY"),
        ("sources.identus.verify.secrets[0]", "IDENTUS_WEBHOOK_TOKEN"),
        ("sources.abp.verify.secrets[0]", "ABP_WEBHOOK_SECRET"),
    ] {
        assert!(
            err.contains(&format!(
                "{field}: is a development or placeholder value, refused because server.listen \
                 is 0.0.0.0:0, which other machines can reach; set {var} to a real secret"
            )),
            "{field} in {err}"
        );
    }
    assert!(!err.contains("dev-only"), "never echoed: {err}");
    assert!(
        !dir.path().join("h.db").exists(),
        "nothing was started or created"
    );

    // With real secrets in the variables, the same start is accepted.
    let mut env: Vec<(&str, &str)> = vec![("HOOKGATE__SERVER__LISTEN", "0.0.0.0:0")];
    let secrets = [
        ("HOOKGATE_ADMIN_TOKEN", "9c1d0e5f7a3b4c2d8e6f"),
        ("KRATOS_WEBHOOK_API_KEY", "3b7e9f1a2c4d6e8f0a1b"),
        ("IDENTUS_WEBHOOK_TOKEN", "5d2c8e4f6a1b3c7d9e0f"),
        ("ABP_WEBHOOK_SECRET", "whs_0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    ];
    env.extend(secrets);
    let out = hookgate_here(&["check-config"], &env).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_start_on_loopback_with_development_secrets_warns_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/h.db", dir.path().display());
    let mut child = hookgate_here(
        &["serve"],
        &[
            ("HOOKGATE__SERVER__LISTEN", "127.0.0.1:0"),
            ("HOOKGATE__ADMIN__LISTEN", "127.0.0.1:0"),
            ("HOOKGATE__STORE__URL", &store),
            ("HOOKGATE__LOG__FORMAT", "json"),
        ],
    )
    .spawn()
    .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    forward_lines(child.stdout.take().unwrap(), tx);
    let mut warning = None;
    while let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(30)) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let message = v["fields"]["message"].as_str().unwrap_or_default();
        if message.starts_with("development secrets in use") {
            assert_eq!(v["level"], "WARN");
            warning = Some(message.to_string());
        }
        if message == "hookgate is listening" {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let warning = warning.expect("a warning before hookgate listens");
    assert_eq!(
        warning,
        "development secrets in use, accepted only while both listeners are on loopback: \
         admin.token (set HOOKGATE_ADMIN_TOKEN), sources.abp.verify.secrets[0] (set \
         ABP_WEBHOOK_SECRET), sources.identus.verify.secrets[0] (set IDENTUS_WEBHOOK_TOKEN), \
         sources.kratos.verify.secrets[0] (set KRATOS_WEBHOOK_API_KEY)"
    );
}

#[test]
fn check_config_finds_in_one_run_what_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let file = dir.path().join("c.yaml");
    let text = TEST_CONFIG
        .replace("  shutdown_timeout:", "  lisen: 1\n  shutdown_timeout:")
        .replace("  level: warn", "  fromat: json\n  level: warn")
        + &format!(
            "store:\n  url: sqlite://{}/data/hookgate.db\n  retention_days: 3\n",
            blocker.display()
        );
    std::fs::write(&file, text).unwrap();
    let out = hookgate(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "server.lisen: unknown field",
        "log.fromat: unknown field",
        "store.retention_days: unknown field",
        &format!(
            "store.url: the folder for {}/data/hookgate.db cannot be created: {} is a file",
            blocker.display(),
            blocker.display()
        ),
    ] {
        assert!(err.contains(expected), "{expected} in {err}");
    }
    assert!(
        err.starts_with("invalid configuration (4 error(s))"),
        "{err}"
    );
    // serve refuses the same store, naming the field.
    let fixed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("  lisen: 1\n", "")
        .replace("  fromat: json\n", "")
        .replace("  retention_days: 3\n", "");
    std::fs::write(&file, fixed).unwrap();
    let out = hookgate(&["--config", file.to_str().unwrap(), "serve"], &[], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.url"));
}

#[test]
fn a_short_secret_is_refused_unless_its_source_allows_it_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("short.yaml");
    let short = TEST_CONFIG.replace("secrets: [identus-token-0001]", "secrets: [tok3n]");
    std::fs::write(&file, &short).unwrap();
    let out = hookgate(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "sources.identus.verify.secrets[0]: is 5 bytes; a secret of scheme `bearer` needs at \
             least 16"
        ) && err.contains("set sources.identus.allow_short_secret: true"),
        "{err}"
    );
    assert!(!err.contains("tok3n"), "never echoed: {err}");

    let allowed = short.replace(
        "    kind: identus\n",
        "    kind: identus\n    allow_short_secret: true\n",
    );
    assert_ne!(allowed, short, "the identus source is in TEST_CONFIG");
    std::fs::write(&file, allowed).unwrap();
    let out = hookgate(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "warning: sources.identus.verify.secrets[0] is 5 bytes, shorter than 16 (allowed by \
             sources.identus.allow_short_secret)"
        ),
        "{err}"
    );
}

#[test]
fn check_config_connect_names_an_unreachable_database_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg.yaml");
    // Nothing listens on port 1.
    let text = format!(
        "{TEST_CONFIG}store:\n  url: postgres://hookgate:${{PGPASSWORD}}@127.0.0.1:1/hooks\n  pool_size: 4\n"
    );
    std::fs::write(&file, text).unwrap();
    let env = [("PGPASSWORD", "pa55-w0rd-x")];
    // Without --connect the network is not touched: the file is valid.
    let out = hookgate(
        &["--config", file.to_str().unwrap(), "check-config"],
        &env,
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let out = hookgate(
        &[
            "--config",
            file.to_str().unwrap(),
            "check-config",
            "--connect",
        ],
        &env,
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "store.url: postgres://hookgate:[redacted]@127.0.0.1:1/hooks cannot be reached"
        ),
        "{err}"
    );
    assert!(!err.contains("pa55-w0rd-x"), "never echoed: {err}");
    // serve refuses it too, naming the field, without the password.
    let out = hookgate(&["--config", file.to_str().unwrap(), "serve"], &env, b"");
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(all.contains("store.url"), "{all}");
    assert!(!all.contains("pa55-w0rd-x"), "never echoed: {all}");
    // A pool of no connections is refused.
    std::fs::write(
        &file,
        format!("{TEST_CONFIG}store:\n  url: postgres://u@127.0.0.1:1/hooks\n  pool_size: 0\n"),
    )
    .unwrap();
    let out = hookgate(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.pool_size: must be at least 1"), "{err}");
}

#[test]
fn check_config_connect_reaches_the_test_database() {
    let Ok(url) = std::env::var("HOOKGATE_TEST_POSTGRES_URL") else {
        println!("skipped: HOOKGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg.yaml");
    std::fs::write(&file, format!("{TEST_CONFIG}store:\n  url: {url}\n")).unwrap();
    let out = hookgate(
        &[
            "--config",
            file.to_str().unwrap(),
            "check-config",
            "--connect",
        ],
        &[],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
}

/// A SQLite store at `path` with `n` events (bodies not UTF-8), written through the library.
fn sqlite_store_with(path: &std::path::Path, n: usize) {
    use hookgate::store::{EventId, EventStore as _, NewEvent, Store as _};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let settings = hookgate::config::StoreSettings::default();
        let store = hookgate::store::sqlite::SqliteStore::open(
            &hookgate::config::SqliteSettings {
                path: path.to_path_buf(),
                busy_timeout: std::time::Duration::from_secs(5),
            },
            &settings,
        )
        .await
        .unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let appends = chunk.iter().map(|&i| {
                let mut body = vec![0xc3, 0x28, 0x00, 0xff];
                body.extend_from_slice(format!("{{\"n\":{i}}}").as_bytes());
                store.append(NewEvent {
                    id: EventId::new(),
                    source: std::sync::Arc::from("kratos"),
                    kind: "kratos",
                    event_type: Some("identity.created".into()),
                    dedupe_key: format!("k-{i}"),
                    sender_id: None,
                    received_at: format!("2026-03-04T05:06:07.{:03}Z", i % 1000),
                    headers: format!(r#"{{"x-i":"{i}"}}"#),
                    body: bytes::Bytes::from(body),
                    projection: None,
                    deliveries: Default::default(),
                    trace_context: None,
                })
            });
            for outcome in futures_util::future::join_all(appends).await {
                outcome.unwrap();
            }
        }
        store.close().await;
    });
}

/// Every event of a SQLite store as (id, received_at, headers, body), in feed order.
fn sqlite_rows(path: &std::path::Path) -> Vec<(String, String, String, Vec<u8>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, received_at, headers, body FROM events ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn copy_store_goes_to_postgres_and_back_byte_identical_and_twice_copies_nothing() {
    let Ok(base) = std::env::var("HOOKGATE_TEST_POSTGRES_URL") else {
        println!("skipped: HOOKGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db");
    let back = dir.path().join("back.db");
    sqlite_store_with(&first, 2000);
    // A schema of its own, named so that a later test process drops it if this one cannot.
    let schema = format!(
        "hg_api_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let admin = |sql: String| {
        let base = base.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let driver = tokio::spawn(conn);
                client.batch_execute(&sql).await.unwrap();
                drop(client);
                let _ = driver.await;
            });
        })
        .join()
        .unwrap();
    };
    admin(format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let pg = format!("{base}{sep}options=-csearch_path%3D{schema}");
    let sqlite_first = format!("sqlite://{}", first.display());
    let sqlite_back = format!("sqlite://{}", back.display());
    let run = |from: &str, to: &str| {
        let out = hookgate(&["copy-store", from, to], &[], b"");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    };
    let err = run(&sqlite_first, &pg);
    assert!(
        err.contains("copied 2000 events (0 already there), 0 projections"),
        "{err}"
    );
    let err = run(&pg, &sqlite_back);
    assert!(
        err.contains("copied 2000 events (0 already there)"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&first), sqlite_rows(&back));
    // Again, both ways: nothing is copied twice.
    let err = run(&sqlite_first, &pg);
    assert!(
        err.contains("copied 0 events (2000 already there)"),
        "{err}"
    );
    let err = run(&pg, &sqlite_back);
    assert!(
        err.contains("copied 0 events (2000 already there)"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&back).len(), 2000);
    admin(format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn copy_store_names_a_missing_source_and_never_prints_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    let out = hookgate(
        &["copy-store", &missing, "postgres://u:s3cret@127.0.0.1:1/x"],
        &[],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("there is no file"), "{err}");
    assert!(!dir.path().join("none.db").exists());

    let source = dir.path().join("source.db");
    sqlite_store_with(&source, 3);
    let out = hookgate(
        &[
            "copy-store",
            &format!("sqlite://{}", source.display()),
            "postgres://u:s3cret@127.0.0.1:1/x",
        ],
        &[],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("postgres://u:[redacted]@127.0.0.1:1/x"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

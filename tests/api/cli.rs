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

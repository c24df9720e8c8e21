//! TLS to the server, as `store.url` asks: one place builds the connector that the pool, the
//! `LISTEN` connection and `check-config --connect` use.
//!
//! - `sslmode=disable`: no TLS. This is also what a URL without `sslmode` gets, as before TLS
//!   was supported (libpq's default is `prefer`; see below for why hookgate's is not).
//! - `sslmode=prefer`: TLS when the server offers it, plain otherwise (tokio-postgres asks).
//! - `sslmode=require`: TLS or no connection.
//! - `sslmode=verify-ca` / `verify-full` (libpq's names): the same as `require`.
//!
//! Whenever TLS is used, rustls verifies the server's certificate chain and that it names the
//! host connected to (libpq checks neither for `prefer`/`require`, and no host name for
//! `verify-ca`). The trusted roots are Mozilla's (`webpki-roots`, built in: the container image
//! has no CA files), plus the certificates of the PEM file `sslrootcert=/path/to/ca.pem`
//! names: most database servers (self-signed, a cloud provider's CA) need that.
//!
//! Why no TLS without `sslmode`: a server that offers TLS with a certificate these roots do not
//! trust (Debian's default, a cloud database's CA) would turn a URL that connects today into
//! one that fails. Asking for TLS is one word in the URL.
//!
//! tokio-postgres refuses parameters it does not know, so `sslrootcert` is taken out of the URL
//! (and `verify-*` written as `require`) before it is parsed:
//! [`crate::config::split_tls_params`].

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{redact_url, split_tls_params};

/// The driver's settings for `url` and the TLS connector for them: the one way every
/// connection to the server is made.
///
/// # Errors
/// When the URL cannot be read or `sslrootcert` names no readable PEM file of certificates
/// (the message names `store.url`, with the password hidden).
pub fn prepare(url: &str) -> anyhow::Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let split = split_tls_params(url).map_err(anyhow::Error::msg)?;
    let mut config: tokio_postgres::Config = split.url.parse().map_err(|e| {
        anyhow::anyhow!(
            "store.url: {} is not a PostgreSQL URL ({e}); use \
             postgres://user:password@host:port/database",
            redact_url(url)
        )
    })?;
    if !split.mode_given {
        config.ssl_mode(SslMode::Disable);
    }
    let tls = connector(split.root_cert.as_deref()).map_err(anyhow::Error::msg)?;
    Ok((config, tls))
}

/// A rustls connector trusting Mozilla's roots and the certificates in `root_cert`.
///
/// # Errors
/// `root_cert` cannot be read, or holds no usable certificate.
fn connector(root_cert: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    let mut roots: rustls::RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    if let Some(path) = root_cert {
        for (n, cert) in read_certificates(path)?.into_iter().enumerate() {
            roots.add(cert).map_err(|e| {
                format!(
                    "store.url: sslrootcert {}: certificate {} cannot be used as a CA ({e}); \
                     name a PEM file of CA certificates",
                    path.display(),
                    n + 1
                )
            })?;
        }
    }
    // ring, the provider reqwest's rustls already brings: one crypto library in the build.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("store.url: TLS cannot be set up ({e})"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The certificates of a PEM file.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "store.url: sslrootcert {shown} cannot be read ({e}); name a readable PEM file of \
             the CA certificates that signed the server's certificate"
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!("store.url: sslrootcert {shown} is not a PEM file of certificates ({e})")
        })?;
    if certs.is_empty() {
        return Err(format!(
            "store.url: sslrootcert {shown} holds no certificate (no -----BEGIN CERTIFICATE----- \
             block); name a PEM file of CA certificates"
        ));
    }
    Ok(certs)
}

/// What to do about a connection that failed over TLS, from the driver's error as
/// [`super::describe`] writes it; `None` when the failure is not about TLS.
pub fn advice(described: &str) -> Option<&'static str> {
    if described.contains("server does not support TLS") {
        Some(
            "the server refused TLS, which sslmode=require (or verify-*) needs: turn on ssl on \
             the server, or use sslmode=prefer (TLS only when offered) or sslmode=disable",
        )
    } else if described.contains("invalid peer certificate") {
        Some(
            "the server's TLS certificate is not trusted for this host: name the CA that signed \
             it with sslrootcert=/path/to/ca.pem, and connect by a host name the certificate \
             names (or use sslmode=disable)",
        )
    } else {
        None
    }
}

/// The message for a connection to `store.url` that failed, with what to do.
pub fn unreachable(url: &str, described: &str) -> String {
    let todo = advice(described).unwrap_or(
        "check the host, port, user, password and database, and that the server accepts \
         connections from here",
    );
    format!(
        "store.url: {} cannot be reached: {described}; {todo}",
        redact_url(url)
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const PG_ENV: &str = "HOOKGATE_TEST_POSTGRES_URL";

    /// A self-signed CA certificate whose key was thrown away: only read, never used.
    const CA_PEM: &str = include_str!("testdata/ca.pem");

    /// The message of [`prepare`]'s error (the connector has no `Debug` for `unwrap_err`).
    fn prepare_err(url: &str) -> String {
        match prepare(url) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_url_without_tls_parameters_is_kept_and_means_no_tls() {
        let s = split_tls_params("postgres://u:pw@h:5432/db").unwrap();
        assert_eq!(s.url, "postgres://u:pw@h:5432/db");
        assert_eq!(s.root_cert, None);
        assert!(!s.mode_given);
        let (config, _) = prepare("postgres://u:pw@h/db?application_name=x").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        let (config, _) = prepare("postgres://u:pw@h/db?sslmode=prefer").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn sslrootcert_is_taken_out_and_decoded() {
        let s = split_tls_params(
            "postgres://u:pw@h/db?sslmode=require&sslrootcert=%2Fetc%2Fca%20x.pem&connect_timeout=2",
        )
        .unwrap();
        assert_eq!(
            s.url,
            "postgres://u:pw@h/db?sslmode=require&connect_timeout=2"
        );
        assert_eq!(s.root_cert, Some(PathBuf::from("/etc/ca x.pem")));
        assert!(s.mode_given);
        let s = split_tls_params("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!((s.url.as_str(), s.root_cert), ("postgres://h/db", None));
    }

    #[test]
    fn verify_modes_mean_require() {
        for mode in ["verify-ca", "verify-full"] {
            let url = format!("postgres://h/db?sslmode={mode}");
            let (config, _) = prepare(&url).unwrap();
            assert_eq!(config.get_ssl_mode(), SslMode::Require, "{mode}");
        }
    }

    #[test]
    fn an_unknown_sslmode_names_the_field_and_the_values_that_work() {
        for mode in ["allow", "verify", ""] {
            let url = format!("postgres://u:s3cret@h/db?sslmode={mode}");
            let err = prepare_err(&url);
            assert!(err.starts_with("store.url: "), "{err}");
            assert!(err.contains("disable, prefer, require"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn sslrootcert_is_read_into_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, CA_PEM).unwrap();
        let url = format!(
            "postgres://u:s3cret@h/db?sslmode=require&sslrootcert={}",
            path.display()
        );
        let (config, _) = prepare(&url).unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn a_missing_or_empty_sslrootcert_names_the_field_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothere.pem");
        let url = format!(
            "postgres://u:s3cret@h/db?sslmode=require&sslrootcert={}",
            missing.display()
        );
        let err = prepare_err(&url);
        assert!(err.starts_with("store.url: sslrootcert "), "{err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(!err.contains("s3cret"), "{err}");

        let not_pem = dir.path().join("empty.pem");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let url = format!("postgres://h/db?sslrootcert={}", not_pem.display());
        let err = prepare_err(&url);
        assert!(err.contains("holds no certificate"), "{err}");

        let err = prepare_err("postgres://h/db?sslrootcert=");
        assert!(err.starts_with("store.url: sslrootcert is empty"), "{err}");
    }

    #[test]
    fn tls_failures_get_advice() {
        let refused = "error performing TLS handshake: server does not support TLS";
        assert!(unreachable("postgres://u:s3cret@h/db", refused).contains("refused TLS"));
        assert!(!unreachable("postgres://u:s3cret@h/db", refused).contains("s3cret"));
        let untrusted = "error performing TLS handshake: invalid peer certificate: UnknownIssuer";
        assert!(advice(untrusted).is_some_and(|a| a.contains("sslrootcert")));
        assert_eq!(advice("Connection refused"), None);
    }

    /// A server that answers an SSLRequest with `N` (no TLS), then any startup message with
    /// the error "plain startup reached". Returns its port.
    async fn refusing_tls_server() -> u16 {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut len = [0u8; 4];
                    let mut body = Vec::new();
                    for _ in 0..2 {
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        body.resize((u32::from_be_bytes(len) as usize).saturating_sub(4), 0);
                        if s.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        if body != [0x04, 0xd2, 0x16, 0x2f] {
                            break; // a startup message
                        }
                        if s.write_all(b"N").await.is_err() {
                            return;
                        }
                    }
                    let mut fields = Vec::new();
                    for (t, v) in [
                        (b'S', "FATAL"),
                        (b'V', "FATAL"),
                        (b'C', "28000"),
                        (b'M', "plain startup reached"),
                    ] {
                        fields.push(t);
                        fields.extend_from_slice(v.as_bytes());
                        fields.push(0);
                    }
                    fields.push(0);
                    let mut msg = vec![b'E'];
                    msg.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
                    msg.extend(fields);
                    let _ = s.write_all(&msg).await;
                    let _ = s.flush().await;
                });
            }
        });
        port
    }

    /// Against a server without TLS: `require` is refused with a message saying so (and not
    /// showing the password), `prefer` goes on without TLS.
    #[tokio::test]
    async fn require_fails_and_prefer_falls_back_when_the_server_refuses_tls() {
        let port = refusing_tls_server().await;
        let url = |mode: &str| format!("postgres://u:s3cret@127.0.0.1:{port}/db?sslmode={mode}");
        let problems = crate::store::connect::reach(&settings(url("require"))).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("store.url: "), "{problems:?}");
        assert!(
            problems[0].contains("the server refused TLS"),
            "{problems:?}"
        );
        assert!(!problems[0].contains("s3cret"), "{problems:?}");
        let problems = crate::store::connect::reach(&settings(url("prefer"))).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("plain startup reached"),
            "{problems:?}"
        );
        assert!(!problems[0].contains("refused TLS"), "{problems:?}");
    }

    /// Whether the server at the test URL offers TLS (`S` to an SSLRequest).
    async fn offers_tls(url: &str) -> bool {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let config: tokio_postgres::Config = url.parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => return false,
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .unwrap();
        // SSLRequest: length 8, code 80877103.
        stream
            .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .await
            .unwrap();
        let mut answer = [0u8; 1];
        stream.read_exact(&mut answer).await.unwrap();
        answer[0] == b'S'
    }

    fn with_mode(url: &str, mode: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode={mode}")
    }

    fn settings(url: String) -> crate::config::StoreSettings {
        crate::config::StoreSettings {
            url,
            ..crate::config::StoreSettings::default()
        }
    }

    /// `check-config --connect` against the test server: `disable` and `prefer` connect when the
    /// server has no TLS, `require` is refused with a message saying so. Against a server that
    /// offers TLS with a certificate Mozilla's roots do not trust (Debian's self-signed default),
    /// `prefer` and `require` fail saying the certificate is not trusted.
    #[tokio::test]
    async fn sslmodes_against_the_test_server() {
        let url = match std::env::var(PG_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                println!("sslmodes_against_the_test_server: skipped ({PG_ENV} is not set)");
                return;
            }
        };
        let reach = |mode: &str| {
            let s = settings(with_mode(&url, mode));
            async move { crate::store::connect::reach(&s).await }
        };
        assert_eq!(reach("disable").await, Vec::<String>::new());
        if offers_tls(&url).await {
            println!("the test server offers TLS: checking that its certificate is verified");
            for mode in ["prefer", "require", "verify-full"] {
                let problems = reach(mode).await;
                // A server whose certificate is publicly trusted would connect: fine too.
                if let Some(p) = problems.first() {
                    println!("sslmode={mode}: {p}");
                    assert!(p.starts_with("store.url: "), "{p}");
                    assert!(p.contains("not trusted"), "{mode}: {p}");
                }
            }
        } else {
            assert_eq!(reach("prefer").await, Vec::<String>::new());
            let problems = reach("require").await;
            println!("sslmode=require: {problems:?}");
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].contains("the server refused TLS"),
                "{problems:?}"
            );
            assert!(problems[0].starts_with("store.url: "), "{problems:?}");
        }
    }

    /// With the server's own certificate as `sslrootcert`, `require` connects over TLS, when the
    /// test server offers TLS and its certificate file can be read here (a local server).
    #[tokio::test]
    async fn require_connects_with_the_servers_certificate_as_root() {
        let url = match std::env::var(PG_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                println!(
                    "require_connects_with_the_servers_certificate_as_root: skipped ({PG_ENV} is not set)"
                );
                return;
            }
        };
        if !offers_tls(&url).await {
            println!("require_connects_with_the_servers_certificate_as_root: skipped (no TLS)");
            return;
        }
        let (config, tls) = prepare(&url).unwrap();
        let (client, connection) = config.connect(tls).await.unwrap();
        let driver = tokio::spawn(connection);
        let cert_file: String = match client.query_one("SHOW ssl_cert_file", &[]).await {
            Ok(row) => row.get(0),
            Err(e) => {
                println!("require_connects_with_the_servers_certificate_as_root: skipped ({e})");
                return;
            }
        };
        drop(client);
        let _ = driver.await;
        let Ok(pem) = std::fs::read_to_string(&cert_file) else {
            println!(
                "require_connects_with_the_servers_certificate_as_root: skipped ({cert_file} \
                 cannot be read here)"
            );
            return;
        };
        // Connect by the name the certificate was made for: `localhost` for Debian's.
        if !url.contains("@127.0.0.1") && !url.contains("@localhost") {
            println!("require_connects_with_the_servers_certificate_as_root: skipped (not local)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("server.pem");
        std::fs::write(&root, pem).unwrap();
        let local = url.replacen("@127.0.0.1", "@localhost", 1);
        let with_root = format!(
            "{}&sslrootcert={}",
            with_mode(&local, "verify-full"),
            root.display()
        );
        let problems = crate::store::connect::reach(&settings(with_root.clone())).await;
        if problems.iter().any(|p| p.contains("not trusted")) {
            // Not self-signed for `localhost` (signed by another CA, or another name).
            println!(
                "require_connects_with_the_servers_certificate_as_root: skipped ({problems:?})"
            );
            return;
        }
        assert_eq!(problems, Vec::<String>::new());
        // The same root, but an address the certificate does not name: refused.
        if url.contains("@127.0.0.1") {
            let by_address = format!(
                "{}&sslrootcert={}",
                with_mode(&url, "require"),
                root.display()
            );
            let problems = crate::store::connect::reach(&settings(by_address)).await;
            assert!(
                problems
                    .first()
                    .is_some_and(|p| p.contains("not trusted for this host")),
                "{problems:?}"
            );
        }
        // And the session is encrypted, as the server sees it.
        let (config, tls) = prepare(&with_root).unwrap();
        let (client, connection) = config.connect(tls).await.unwrap();
        let driver = tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0));
        drop(client);
        let _ = driver.await;
    }
}

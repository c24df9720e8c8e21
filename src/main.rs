//! The `hookgate` command: serve (default), check-config, sign, copy-store.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookgate::config::LoadOptions;
use hookgate::shutdown::shutdown_signal;
use hookgate::sign::{self, SignOptions, SignScheme};
use hookgate::startup::{Application, check_config, load_settings};
use hookgate::telemetry;

/// mimalloc rather than glibc's allocator: the request path allocates and frees small buffers on
/// every worker thread, and the store's writer thread frees what they allocated; glibc's
/// per-thread arenas then grow and trim their heaps (an `mprotect` system call about 13 times
/// per commit, measured with strace) and spend CPU consolidating. Measured in
/// docs/performance.md, "Allocator".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A webhook receiver for Ory Kratos, Hyperledger Identus, ASP.NET Boilerplate, Standard Webhooks,
/// HMAC-signing and other JSON senders.
#[derive(Parser)]
#[command(name = "hookgate", version, about)]
struct Cli {
    /// Configuration file (repeatable; later files win). Replaces config/default.yaml and
    /// config/{HOOKGATE_ENV}.yaml.
    #[arg(long = "config", global = true, value_name = "FILE")]
    config: Vec<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the receiver (the default).
    Serve,
    /// Validate the configuration and exit (non-zero with the errors when it is invalid).
    CheckConfig {
        /// Also connect to the store's database (PostgreSQL; nothing is run there).
        #[arg(long)]
        connect: bool,
    },
    /// Print the headers a sender would send with the body read from standard input.
    Sign {
        /// The scheme to sign with.
        #[arg(value_enum)]
        scheme: SignScheme,
        /// The secret (or set HOOKGATE_SIGN_SECRET, which keeps it out of the process list).
        #[arg(long, env = "HOOKGATE_SIGN_SECRET", hide_env_values = true)]
        secret: String,
        /// `api_key`: the header name (default X-Api-Key); `hmac`: the signature header.
        #[arg(long)]
        header: Option<String>,
        /// `api_key`: send the key in this cookie instead of a header.
        #[arg(long)]
        cookie: Option<String>,
        /// `standard_webhooks`: the webhook-id (default: a fresh msg_… id).
        #[arg(long)]
        id: Option<String>,
        /// `standard_webhooks`, and `hmac` templates with {timestamp}: Unix seconds (default:
        /// now).
        #[arg(long, allow_hyphen_values = true)]
        timestamp: Option<i64>,
        /// `hmac`: sha1, sha256 or sha512.
        #[arg(long, default_value = "sha256")]
        algorithm: String,
        /// `hmac`: hex or base64.
        #[arg(long, default_value = "hex")]
        encoding: String,
        /// `hmac`: text before the MAC (sha256=, v0=).
        #[arg(long, default_value = "")]
        prefix: String,
        /// `hmac`: what is signed, e.g. "v0:{timestamp}:{body}".
        #[arg(long, default_value = "{body}")]
        signed: String,
        /// `hmac` templates with {timestamp}: the header that carries it.
        #[arg(long)]
        timestamp_header: Option<String>,
    },
    /// Copy every event (id, time, headers, exact bytes) and projection from one store to
    /// another (sqlite://PATH or postgres://…); idempotent and resumable. No configuration
    /// file is read.
    CopyStore {
        /// The store to copy from (a SQLite file must exist).
        from: String,
        /// The store to copy into (created and migrated when new).
        to: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = LoadOptions {
        files: cli.config,
        ..LoadOptions::default()
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CopyStore { from, to } => copy_store(&from, &to),
        Command::Sign {
            scheme,
            secret,
            header,
            cookie,
            id,
            timestamp,
            algorithm,
            encoding,
            prefix,
            signed,
            timestamp_header,
        } => {
            let options = (|| -> Result<SignOptions, String> {
                Ok(SignOptions {
                    header,
                    cookie,
                    id,
                    timestamp,
                    algorithm: Some(sign::algorithm(&algorithm)?),
                    encoding: Some(sign::encoding(&encoding)?),
                    prefix,
                    signed: Some(
                        sign::SignedTemplate::parse(&signed)
                            .map_err(|why| format!("--signed {why}"))?,
                    ),
                    timestamp_header,
                })
            })();
            let mut body = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut body) {
                eprintln!("hookgate sign: cannot read the body from standard input: {e}");
                return ExitCode::from(2);
            }
            match options.and_then(|o| sign::headers_with(scheme, &secret, &body, &o)) {
                Ok(headers) => {
                    for (name, value) in headers {
                        println!("{name}: {value}");
                    }
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("hookgate sign: {why}");
                    ExitCode::from(2)
                }
            }
        }
        Command::CheckConfig { connect } => match check_config(&opts, connect) {
            Ok(s) => {
                for warning in s.warnings() {
                    eprintln!("warning: {warning}");
                }
                let ids: Vec<&str> = s.sources.keys().map(String::as_str).collect();
                let destinations: Vec<&str> = s.destinations.keys().map(String::as_str).collect();
                let delivered = if destinations.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} destination(s): {}",
                        destinations.len(),
                        destinations.join(", ")
                    )
                };
                println!(
                    "configuration is valid: {} source(s): {}{delivered}",
                    ids.len(),
                    ids.join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve => {
            let settings = match load_settings(&opts) {
                Ok(s) => s,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("hookgate: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // Inside the runtime: traces, when on, are exported from it.
            let started = {
                let _runtime = runtime.enter();
                telemetry::init_with_traces(&settings.log, &settings.telemetry)
            };
            if let Err(e) = started {
                eprintln!("hookgate: {e}");
                return ExitCode::FAILURE;
            }
            let result = runtime.block_on(async {
                let app = Application::build(settings).await?;
                app.run_until_stopped(shutdown_signal()).await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "hookgate stopped with an error");
                    eprintln!("hookgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `hookgate copy-store FROM TO`: progress on standard error every few seconds, one line at
/// the end.
fn copy_store(from: &str, to: &str) -> ExitCode {
    use hookgate::config::redact_url;
    use hookgate::store::copy::{self, Progress};

    let (from_shown, to_shown) = (redact_url(from), redact_url(to));
    if from.trim_end_matches('/') == to.trim_end_matches('/') {
        eprintln!("hookgate copy-store: {from_shown} is both the source and the destination");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookgate copy-store: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let source = copy::open_url(from, true)
            .await
            .map_err(|e| format!("the source {from_shown}: {e:#}"))?;
        let dest = match copy::open_url(to, false).await {
            Ok(d) => d,
            Err(e) => {
                source.close().await;
                return Err(format!("the destination {to_shown}: {e:#}"));
            }
        };
        let mut last = std::time::Instant::now();
        let report = |p: &Progress| {
            if last.elapsed() >= std::time::Duration::from_secs(2) {
                last = std::time::Instant::now();
                eprintln!(
                    "copy-store: {}/{} events read, {} copied, {} already there, {:.0} events/s",
                    p.read,
                    p.total,
                    p.copied,
                    p.skipped,
                    p.rate()
                );
            }
        };
        let outcome = copy::copy(source.as_ref(), dest.as_ref(), report).await;
        source.close().await;
        dest.close().await;
        outcome.map_err(|e| {
            format!(
                "copying from {from_shown} to {to_shown} stopped: {e}; what was copied stays, and \
                 running the same command again continues"
            )
        })
    });
    match result {
        Ok(p) => {
            eprintln!(
                "copied {} events ({} already there), {} projections ({} already there) , {} deliveries ({} already there) and {} registered hooks ({} already there) from {from_shown} to {to_shown} in {:.1} s ({:.0} events/s)",
                p.copied,
                p.skipped,
                p.projections,
                p.projections_skipped,
                p.deliveries,
                p.deliveries_skipped,
                p.hooks,
                p.hooks_skipped,
                p.elapsed.as_secs_f64(),
                p.rate()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hookgate copy-store: {e}");
            ExitCode::FAILURE
        }
    }
}

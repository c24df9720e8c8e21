//! The `hookgate` command: serve (default), check-config, sign.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookgate::config::LoadOptions;
use hookgate::shutdown::shutdown_signal;
use hookgate::sign::{self, SignScheme};
use hookgate::startup::{Application, check_config, load_settings};
use hookgate::telemetry;

/// A webhook receiver for Ory Kratos, Hyperledger Identus and ASP.NET Boilerplate.
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
        /// `api_key`: the header name.
        #[arg(long, default_value = "X-Api-Key")]
        header: String,
        /// `api_key`: send the key in this cookie instead of a header.
        #[arg(long)]
        cookie: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = LoadOptions {
        files: cli.config,
        ..LoadOptions::default()
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Sign {
            scheme,
            secret,
            header,
            cookie,
        } => {
            let mut body = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut body) {
                eprintln!("hookgate sign: cannot read the body from standard input: {e}");
                return ExitCode::from(2);
            }
            for (name, value) in sign::headers(scheme, &secret, &body, &header, cookie.as_deref()) {
                println!("{name}: {value}");
            }
            ExitCode::SUCCESS
        }
        Command::CheckConfig { connect } => match check_config(&opts, connect) {
            Ok(s) => {
                for warning in s.warnings() {
                    eprintln!("warning: {warning}");
                }
                let ids: Vec<&str> = s.sources.keys().map(String::as_str).collect();
                println!(
                    "configuration is valid: {} source(s): {}",
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
            telemetry::init(&settings.log);
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

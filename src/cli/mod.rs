//! The command line (SPEC §7): clap commands, one file per command. All
//! printing lives here: results on stdout, progress and messages on stderr.

mod apply;
mod connections;
mod db;
mod exit;
mod keys;
mod run;
mod runs;
mod serve;
mod workflows;

pub use exit::Exit;

use crate::client::Client;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// flowctl — trigger and run JSON-defined workflows through a REST API.
#[derive(Debug, Parser)]
#[command(name = "flowctl", version, about)]
pub struct Cli {
    /// Server URL for client commands [default: from the credentials file, else http://localhost:3000]
    #[arg(long, global = true, env = "FLOWCTL_URL")]
    pub url: Option<String>,
    /// API key for client commands [default: from the credentials file `serve` writes]
    #[arg(long, global = true, env = "FLOWCTL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print the full API `data` object as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging on stderr (-v, -vv); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server and the workflow worker
    Serve(serve::ServeArgs),
    /// Register or update workflow definitions (files or folders of *.json)
    Apply(apply::ApplyArgs),
    /// Check definitions offline, without a server
    Validate(apply::ValidateArgs),
    /// Trigger a run of a workflow
    Run(run::RunArgs),
    /// Wait for a run to finish and print its output
    Wait(run::WaitArgs),
    /// List, show and cancel runs
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// List, show and change the status of workflows
    #[command(subcommand)]
    Workflows(workflows::WorkflowsCommand),
    /// Create, list and delete connections (stored, encrypted credentials)
    #[command(subcommand)]
    Connections(connections::ConnectionsCommand),
    /// Manage API keys directly on the database file (server host)
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check the database file's integrity, or back it up while the server runs
    #[command(subcommand)]
    Db(db::DbCommand),
}

pub fn init_tracing(cli: &Cli) {
    let default = match cli.verbose {
        0 => "flowctl=info,warn",
        1 => "flowctl=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = matches!(&cli.command, Command::Serve(a) if a.log_format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.with_target(false).init();
    }
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // Reads run on the blocking pool; a bound keeps memory flat under load.
        .max_blocking_threads(16)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Server.code());
        }
    };
    let exit = runtime.block_on(dispatch(cli));
    ExitCode::from(exit.code())
}

async fn dispatch(cli: Cli) -> Exit {
    let json = cli.json;
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Validate(args) => apply::validate(args),
        Command::Keys(cmd) => keys::keys(cmd, json).await,
        Command::Db(cmd) => db::db(cmd, json).await,
        Command::Apply(ref args) => match client(&cli) {
            Ok(c) => apply::apply(&c, args, json).await,
            Err(e) => Err(e),
        },
        Command::Run(ref args) => match client(&cli) {
            Ok(c) => run::run(&c, args, json).await,
            Err(e) => Err(e),
        },
        Command::Wait(ref args) => match client(&cli) {
            Ok(c) => run::wait(&c, args, json).await,
            Err(e) => Err(e),
        },
        Command::Runs(ref cmd) => match client(&cli) {
            Ok(c) => runs::runs(&c, cmd, json).await,
            Err(e) => Err(e),
        },
        Command::Connections(ref cmd) => match client(&cli) {
            Ok(c) => connections::connections(&c, cmd, json).await,
            Err(e) => Err(e),
        },
        Command::Workflows(ref cmd) => match client(&cli) {
            Ok(c) => workflows::workflows(&c, cmd, json).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(exit) => exit,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            failure.exit
        }
    }
}

/// A command that could not do its job: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
}

impl From<crate::client::ClientError> for Failure {
    fn from(e: crate::client::ClientError) -> Self {
        use crate::client::ClientError::*;
        let exit = match &e {
            Rejected { .. } => Exit::Usage,
            Unreachable { .. } | Server { .. } | Decode(_) => Exit::Server,
        };
        let mut message = e.to_string();
        if let Rejected { error, .. } = &e {
            for d in error.details.iter().flatten() {
                message.push_str(&format!("\n  {}: {}", d.dotted_path(), d.message));
            }
        }
        Failure { exit, message }
    }
}

pub type CmdResult = Result<Exit, Failure>;

/// Server URL and key: flags, then FLOWCTL_URL / FLOWCTL_API_KEY, then the credentials file.
fn client(cli: &Cli) -> Result<Client, Failure> {
    let creds = crate::config::load_credentials();
    let url = cli
        .url
        .clone()
        .or_else(|| creds.as_ref().map(|c| c.url.clone()))
        .unwrap_or_else(|| crate::config::DEFAULT_URL.to_string());
    let key = cli
        .api_key
        .clone()
        .or_else(|| creds.map(|c| c.api_key))
        .ok_or_else(|| {
            Failure::usage(
                "no API key: set FLOWCTL_API_KEY or run flowctl serve once on this machine",
            )
        })?;
    Ok(Client::new(&url, &key))
}

/// Print a JSON value on stdout, pretty.
pub(crate) fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

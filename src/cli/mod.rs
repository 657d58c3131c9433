//! The command line: clap commands, one file per command. All printing lives
//! here: results on stdout, progress and messages on stderr.

mod apply;
mod approvals;
mod batch;
mod connections;
mod db;
mod db_pg;
mod endpoints;
mod exit;
mod family;
mod help;
mod keys;
mod open;
mod run;
mod runs;
pub mod serve;
mod simulate;
mod table;
mod target;
mod test;
mod webhook;
mod workflows;

pub use exit::Exit;
pub use target::ClientOpts;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// `0.1.0 (commit 1a2b3c4d5e6f)`
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FLOWCTL_COMMIT"),
    ")"
);

/// flowctl — trigger and run JSON-defined workflows through a REST API.
///
/// `flowctl serve` starts the server; the other commands talk to it (they find
/// it and its key on their own on the same machine). Exit codes: 0 ok, 1 run
/// failed or cancelled, 2 usage error or request rejected, 3 server unreachable
/// or 5xx, 124 --timeout elapsed.
#[derive(Debug, Parser)]
#[command(name = "flowctl", version = VERSION, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub client: target::TopClientOpts,
    /// Print the full API `data` object as JSON instead of a summary
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging on stderr (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server and the workflow worker
    Serve(serve::ServeArgs),
    /// Register or update workflow definitions (files or folders of *.json); all or nothing
    Apply(apply::ApplyArgs),
    /// Check definitions offline, without a server; every problem with its path
    Validate(apply::ValidateArgs),
    /// Run a workflow's test cases offline, with mocks for every side effect (no server, no network)
    Test(test::TestArgs),
    /// Replay a new definition against recorded runs on the server; report what would change
    Simulate(simulate::SimulateArgs),
    /// Trigger a run of a workflow (or one run per input with --batch)
    Run(run::RunArgs),
    /// Wait for a run to finish and print its output
    Wait(run::WaitArgs),
    /// List, show and cancel runs
    Runs(runs::RunsArgs),
    /// List, show and change the status of workflows
    Workflows(workflows::WorkflowsArgs),
    /// List approvals waiting for a decision, approve or reject them
    Approvals(approvals::ApprovalsArgs),
    /// Create, list and delete connections (stored, encrypted credentials)
    Connections(connections::ConnectionsArgs),
    /// Outbound notifications: endpoints that receive signed run events, their deliveries
    Endpoints(endpoints::EndpointsArgs),
    /// Manage API keys directly on the database file (run it on the server host)
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check the database, back it up, or copy a SQLite deployment to PostgreSQL
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Print (and open in a browser, where there is one) a one-time login link for the dashboard
    #[command(visible_alias = "dashboard")]
    Open {
        /// Only print the link
        #[arg(long)]
        no_browser: bool,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Send a signed test delivery to a webhook workflow (like `stripe trigger`)
    Webhook(webhook::WebhookArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell)
    Completion {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

/// Parse the command line with the full help (EXAMPLES included).
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = help::command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
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
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs());
    if json {
        builder.json().init();
    } else {
        builder.with_target(false).init();
    }
}

/// Colour log lines only for a person at a terminal: a file, a pipe, journald
/// or `nohup` gets plain text, and `NO_COLOR` (any non-empty value) turns it off.
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
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
    let top = &cli.client;
    let result = match &cli.command {
        Command::Serve(args) => serve::serve(args.clone()).await,
        Command::Validate(args) => apply::validate(args, json),
        Command::Completion { shell } => help::completion(*shell),
        Command::Test(args) => test::test(args, json),
        Command::Simulate(args) => match target::client(top, &args.client) {
            Ok(c) => simulate::simulate(&c, args, json).await,
            Err(e) => Err(e),
        },
        Command::Keys(cmd) => keys::keys(cmd.clone(), json).await,
        Command::Db(cmd) => db::db(cmd.clone(), json).await,
        Command::Apply(args) => match target::client(top, &args.client) {
            Ok(c) => apply::apply(&c, args, json).await,
            Err(e) => Err(e),
        },
        Command::Run(args) => match target::client(top, &args.client) {
            Ok(c) => run::run(&c, args, json).await,
            Err(e) => Err(e),
        },
        Command::Wait(args) => match target::client(top, &args.client) {
            Ok(c) => run::wait(&c, args, json).await,
            Err(e) => Err(e),
        },
        Command::Runs(args) => match target::client(top, &args.client) {
            Ok(c) => runs::runs(&c, &args.command, json).await,
            Err(e) => Err(e),
        },
        Command::Approvals(args) => match target::client(top, &args.client) {
            Ok(c) => approvals::approvals(&c, &args.command, json).await,
            Err(e) => Err(e),
        },
        Command::Connections(args) => match target::client(top, &args.client) {
            Ok(c) => connections::connections(&c, &args.command, json).await,
            Err(e) => Err(e),
        },
        Command::Endpoints(args) => match target::client(top, &args.client) {
            Ok(c) => endpoints::endpoints(&c, &args.command, json).await,
            Err(e) => Err(e),
        },
        Command::Open { no_browser, client } => match target::client(top, client) {
            Ok(c) => open::open(&c, *no_browser, json).await,
            Err(e) => Err(e),
        },
        Command::Webhook(args) => match target::client(top, &args.client) {
            Ok(c) => webhook::webhook(&c, &args.command, json).await,
            Err(e) => Err(e),
        },
        Command::Workflows(args) => match target::client(top, &args.client) {
            Ok(c) => workflows::workflows(&c, &args.command, json).await,
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

/// Print a value on stdout as pretty JSON.
/// A closed pipe (`| head`) ends the output quietly instead of panicking.
pub(crate) fn print_json<T: serde::Serialize + ?Sized>(v: &T) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every option and argument of every command has a one-line description.
    #[test]
    fn every_option_and_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(format!("{path} {} (command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = vec![];
        walk(&super::Cli::command(), "flowctl", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:#?}");
    }
}

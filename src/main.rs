use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = flowctl::cli::Cli::parse();
    flowctl::cli::init_tracing(&cli);
    flowctl::cli::run(cli)
}

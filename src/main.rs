use std::process::ExitCode;

// glibc's malloc/free were an eighth of the server's CPU under load (many
// small JSON and header allocations per request); mimalloc's thread-local
// free lists are several times cheaper. SQLite keeps the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = flowctl::cli::parse();
    flowctl::cli::init_tracing(&cli);
    flowctl::cli::run(cli)
}

//! Small things a newcomer trips over when starting `flowctl serve`, through
//! the real binary: plain logs off a terminal (and with `NO_COLOR`), a private
//! config directory, nothing left behind by a busy port, and a `--listen`
//! typo explained as one.

use crate::common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `flowctl serve -v` (its debug lines go through the log formatter) on a
/// free port and a database in `home`, with `umask 022`.
fn serve_cmd(home: &Path, wrap_in_pty: bool, envs: &[(&str, &str)]) -> Command {
    let inner = format!(
        "umask 022; exec '{BIN}' serve -v --listen 127.0.0.1:0 --db '{}'",
        home.join("flowctl.db").display()
    );
    let mut cmd = if wrap_in_pty {
        // script(1) gives the server a terminal for stdin, stdout and stderr.
        let mut c = Command::new("script");
        c.args(["-qfec", &inner, "/dev/null"]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &inner]);
        c
    };
    env_for(&mut cmd, home);
    cmd.env_remove("NO_COLOR")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Everything the server printed up to and including its "listening" line;
/// then the server (its whole process group) is stopped.
fn output_until_listening(mut cmd: Command) -> String {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let mut child: Child = cmd.spawn().expect("spawn serve");
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains("flowctl listening on") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    let pgid = child.id().to_string();
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .status();
    let _ = child.wait();
    assert!(
        seen.contains("flowctl listening on"),
        "server did not start:\n{seen}"
    );
    seen
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal_or_with_no_color() {
    // Piped (a file, journald, nohup): plain text.
    let home = tempfile::tempdir().unwrap();
    let out = output_until_listening(serve_cmd(home.path(), false, &[]));
    assert!(
        out.contains("connection cap"),
        "no log line to look at:\n{out}"
    );
    assert!(
        !out.contains('\x1b'),
        "colour codes in piped logs:\n{out:?}"
    );

    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED the terminal half: no script(1) to provide a terminal");
        return;
    }
    // On a terminal: coloured, unless NO_COLOR says otherwise.
    let home = tempfile::tempdir().unwrap();
    let out = output_until_listening(serve_cmd(home.path(), true, &[]));
    assert!(out.contains("connection cap"), "{out}");
    assert!(out.contains('\x1b'), "a terminal gets colours:\n{out:?}");

    let home = tempfile::tempdir().unwrap();
    let out = output_until_listening(serve_cmd(home.path(), true, &[("NO_COLOR", "1")]));
    assert!(out.contains("connection cap"), "{out}");
    assert!(!out.contains('\x1b'), "NO_COLOR is honoured:\n{out:?}");
}

#[test]
fn the_config_directory_is_created_0700_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    output_until_listening(serve_cmd(home.path(), false, &[]));
    let dir = home.path().join("config/flowctl");
    assert!(dir.join("credentials.json").exists());
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
}

/// The files in `dir` (names), recursively.
fn files_in(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(files_in(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

#[test]
fn a_busy_port_leaves_no_database_files_behind() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data-dir");
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, home.path());
    let out = cmd
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(data.join("flowctl.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot listen on"),
        "{}",
        stderr(&out)
    );
    let left = if data.exists() {
        files_in(&data)
    } else {
        vec![]
    };
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn listen_without_a_port_explains_the_expected_form() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("flowctl.db");
    for (listen, hint) in [
        ("localhost", "did you mean localhost:3000?"),
        ("3911", "did you mean :3911?"),
        ("127.0.0.1:http", ""),
    ] {
        let mut cmd = Command::new(BIN);
        env_for(&mut cmd, home.path());
        let out = cmd
            .args(["serve", "--listen", listen, "--db"])
            .arg(&db)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{listen}: {err}");
        assert!(err.contains("expected HOST:PORT"), "{listen}: {err}");
        assert!(err.contains("127.0.0.1:3000"), "{listen}: {err}");
        assert!(err.contains(hint), "{listen}: {err}");
        assert!(!err.contains("another server"), "{listen}: {err}");
    }
    assert!(!db.exists(), "a typo opened the database");

    // Even while another server holds the database, the typo is what is reported.
    let s = Server::start_at(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        home.path().join("held.db"),
        &[],
        &[],
    );
    let mut cmd = Command::new(BIN);
    env_for(&mut cmd, s.home.path());
    let out = cmd
        .args(["serve", "--listen", "localhost", "--db"])
        .arg(&s.db)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("expected HOST:PORT"),
        "{}",
        stderr(&out)
    );
}

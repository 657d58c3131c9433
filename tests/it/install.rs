//! `install.sh` puts flowctl where the next command finds it, or prints the
//! one line that makes it so.

use crate::common::*;
use std::process::Command;

fn install(prefix: &std::path::Path, path: &str) -> std::process::Output {
    Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .env("FLOWCTL_BIN", BIN)
        .env("PREFIX", prefix)
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn install_puts_flowctl_on_the_path_or_says_the_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    let bin_dir = prefix.join("bin");
    let out = install(&prefix, "/usr/bin:/bin");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = format!("export PATH=\"{}:$PATH\"", bin_dir.display());
    assert!(err.contains(&line), "{err}");

    // The printed line works: with it, the next `flowctl` is found.
    let shell = format!("{line}; flowctl --version");
    let v = Command::new("bash")
        .args(["-c", &shell])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(stdout(&v).starts_with("flowctl "), "{}", stderr(&v));

    let on_path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let out = install(&prefix, &on_path);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("not on your PATH"),
        "{}",
        stderr(&out)
    );
}

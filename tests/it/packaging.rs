//! The release artifacts of `scripts/package.sh`: the tarball installs with
//! `install.sh ARTIFACT` only when its checksum matches, and the .deb installs
//! a hardened systemd unit whose service starts as its own user.
//!
//! The .deb test changes the machine (a package, a system user), so it runs
//! only in CI (`CI` set, as root, with dpkg and systemd-analyze); elsewhere it
//! is skipped with a message. It installs target/dist/flowctl_VERSION_amd64.deb
//! (CI builds it with the static binary) or FLOWCTL_DEB, else packages the
//! test binary.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn version() -> String {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    stdout(&out).split_whitespace().nth(1).unwrap().to_string()
}

/// `scripts/package.sh --fast WHAT` on the test binary, into `out`.
fn package(what: &str, out: &Path) {
    let o = Command::new("bash")
        .arg(format!("{ROOT}/scripts/package.sh"))
        .args(["--fast", what])
        .env("FLOWCTL_BIN", BIN)
        .env("OUT", out)
        .output()
        .unwrap();
    assert!(o.status.success(), "package.sh: {}", stderr(&o));
}

fn install(script: &Path, args: &[&Path], prefix: &Path) -> Output {
    Command::new("bash")
        .arg(script)
        .args(args)
        .env("PREFIX", prefix)
        .env_remove("FLOWCTL_BIN")
        .output()
        .unwrap()
}

#[test]
fn install_sh_installs_the_tarball_only_when_its_checksum_matches() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    package("tar", &dist);
    let name = format!("flowctl-{}-x86_64-linux.tar.gz", version());
    let tarball = dist.join(&name);
    let sums = dist.join(format!("{name}.sha256"));

    // The checksum file is in `sha256sum -c` form.
    let c = Command::new("sha256sum")
        .arg("-c")
        .arg(&sums)
        .current_dir(&dist)
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", stderr(&c));

    // The archive: binary, README, LICENSE, the docs and install.sh, in one folder.
    let list = Command::new("tar")
        .arg("tzf")
        .arg(&tarball)
        .output()
        .unwrap();
    let top = name.trim_end_matches(".tar.gz");
    for f in [
        "flowctl",
        "README.md",
        "LICENSE",
        "docs/cli.md",
        "install.sh",
    ] {
        assert!(
            stdout(&list).lines().any(|l| l == format!("{top}/{f}")),
            "{f} missing:\n{}",
            stdout(&list)
        );
    }

    // From a checkout: `install.sh ARTIFACT`, checked, installed, working.
    let script = Path::new(ROOT).join("install.sh");
    let prefix = dir.path().join("a");
    let out = install(&script, &[&tarball], &prefix);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("checksum ok"), "{}", stderr(&out));
    let v = Command::new(prefix.join("bin/flowctl"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(stdout(&v).starts_with("flowctl "), "{}", stdout(&v));

    // From the unpacked artifact: its own install.sh installs the binary beside it.
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let x = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(x.status.success());
    let prefix = dir.path().join("b");
    let out = install(&unpacked.join(top).join("install.sh"), &[], &prefix);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(prefix.join("bin/flowctl").exists());

    // A corrupt download is refused and nothing is installed.
    let corrupt = dir.path().join(&name);
    let mut bytes = std::fs::read(&tarball).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&corrupt, bytes).unwrap();
    std::fs::copy(&sums, dir.path().join(format!("{name}.sha256"))).unwrap();
    let prefix = dir.path().join("c");
    let out = install(&script, &[&corrupt], &prefix);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
    assert!(!prefix.join("bin/flowctl").exists());

    // Without its .sha256 beside it: refused, saying what is missing.
    std::fs::remove_file(dir.path().join(format!("{name}.sha256"))).unwrap();
    let out = install(&script, &[&corrupt], &prefix);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no checksum file"),
        "{}",
        stderr(&out)
    );
    assert!(!prefix.join("bin/flowctl").exists());
}

fn skip(why: &str) -> bool {
    eprintln!("SKIPPED: {why}");
    true
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> Output {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// `KEY=value` lines of an environment file (comments and blanks skipped).
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deb_installs_a_hardened_service_that_runs_as_its_own_user() {
    if std::env::var_os("CI").is_none() {
        skip(
            "installing the .deb changes this machine; it runs in CI only (set CI=1 as root to run it)",
        );
        return;
    }
    // In CI these must hold: a failure, not a skip.
    let root = run("id", &["-u"]);
    assert_eq!(stdout(&root).trim(), "0", "the .deb test needs root in CI");
    for tool in ["dpkg", "dpkg-deb", "systemd-analyze", "setpriv"] {
        assert!(
            run("sh", &["-c", &format!("command -v {tool}")])
                .status
                .success(),
            "{tool} is missing"
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let deb: PathBuf = match std::env::var_os("FLOWCTL_DEB") {
        Some(p) => p.into(),
        None => {
            let built =
                Path::new(ROOT).join(format!("target/dist/flowctl_{}_amd64.deb", version()));
            if built.exists() {
                built
            } else {
                package("deb", tmp.path());
                tmp.path().join(format!("flowctl_{}_amd64.deb", version()))
            }
        }
    };
    let deb = deb.to_str().unwrap().to_string();

    // What it ships.
    let contents = stdout(&ok("dpkg-deb", &["--contents", &deb]));
    for f in [
        "./usr/bin/flowctl",
        "./usr/lib/systemd/system/flowctl.service",
        "./etc/flowctl/flowctl.env",
        "./usr/share/doc/flowctl/copyright",
    ] {
        assert!(contents.contains(f), "{f} missing:\n{contents}");
    }
    let conffiles = stdout(&ok("dpkg-deb", &["--info", &deb, "conffiles"]));
    assert!(
        conffiles.contains("/etc/flowctl/flowctl.env"),
        "{conffiles}"
    );

    let _ = run("dpkg", &["--purge", "flowctl"]); // a leftover of an earlier run
    ok("dpkg", &["-i", &deb]);
    let purged = scopeguard(|| {
        let _ = run("dpkg", &["--purge", "flowctl"]);
    });

    // The unit: valid, and hardened (systemd's own exposure score).
    let unit = "/usr/lib/systemd/system/flowctl.service";
    let v = run("systemd-analyze", &["verify", "--man=no", unit]);
    assert!(
        v.status.success() && !stderr(&v).contains("flowctl.service"),
        "{}",
        stderr(&v)
    );
    let sec = ok("systemd-analyze", &["security", "--offline=true", unit]);
    let score: f64 = stdout(&sec)
        .lines()
        .find_map(|l| l.split("flowctl.service: ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level:\n{}", stdout(&sec)));
    assert!(score <= 2.0, "exposure {score}:\n{}", stdout(&sec));
    let unit_text = std::fs::read_to_string(unit).unwrap();
    for setting in [
        "User=flowctl",
        "StateDirectory=flowctl",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ] {
        assert!(unit_text.lines().any(|l| l == setting), "{setting} missing");
    }

    // The system user, its private state directory and the settings file.
    let passwd = stdout(&ok("getent", &["passwd", "flowctl"]));
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert!(
        fields[2].parse::<u32>().unwrap() < 1000,
        "not a system user: {passwd}"
    );
    assert_eq!(fields[5], "/var/lib/flowctl");
    assert!(fields[6].ends_with("nologin"), "{passwd}");
    let stat = stdout(&ok(
        "stat",
        &[
            "-c",
            "%U %a",
            "/var/lib/flowctl",
            "/etc/flowctl/flowctl.env",
        ],
    ));
    assert_eq!(
        stat.lines().collect::<Vec<_>>(),
        ["flowctl 700", "root 640"],
        "{stat}"
    );

    // The installed binary, started as the unit would (its user, Environment=
    // and EnvironmentFile=), on a free port: it serves, writes its state under
    // /var/lib/flowctl, and stops cleanly on SIGTERM.
    let mut env: Vec<(String, String)> = unit_text
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .flat_map(env_file)
        .collect();
    env.extend(env_file(
        &std::fs::read_to_string("/etc/flowctl/flowctl.env").unwrap(),
    ));
    env.retain(|(k, _)| k != "FLOWCTL_LISTEN" && k != "FLOWCTL_SERVE_ARGS");
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=flowctl",
            "--regid=flowctl",
            "--init-groups",
            "/usr/bin/flowctl",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_clear()
        .envs(env)
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/var/lib/flowctl")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    let mut seen = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        seen.push_str(&line);
        seen.push('\n');
        if let Some(u) = line.strip_prefix("flowctl listening on ") {
            url = Some(u.to_string());
            break;
        }
    }
    let Some(url) = url else {
        let _ = child.kill();
        panic!("the installed flowctl did not start:\n{seen}");
    };
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{seen}");
    let owner = stdout(&ok("stat", &["-c", "%U %a", "/var/lib/flowctl/flowctl.db"]));
    assert_eq!(owner.trim(), "flowctl 600");
    assert!(
        seen.contains("/var/lib/flowctl/.config/flowctl/credentials.json"),
        "{seen}"
    );

    // Purge removes the binary, the unit, the settings and the state.
    drop(purged);
    for p in ["/usr/bin/flowctl", unit, "/etc/flowctl", "/var/lib/flowctl"] {
        assert!(!Path::new(p).exists(), "{p} left after purge");
    }
}

/// Runs `f` when dropped (also when the test panics).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

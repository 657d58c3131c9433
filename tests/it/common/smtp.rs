//! A real SMTP server for tests: Python's aiosmtpd (installed by `.ci/run`)
//! on a loopback port, delivering into a Maildir that tests read back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

/// How the server speaks TLS.
#[derive(Clone, Copy, PartialEq)]
pub enum SmtpTls {
    None,
    /// STARTTLS offered and required before mail.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// A self-signed certificate for 127.0.0.1, made with the openssl CLI.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl CLI");
    assert!(status.success());
    (cert, key)
}

impl SmtpServer {
    pub fn start(dir: &Path) -> SmtpServer {
        SmtpServer::start_tls(dir, SmtpTls::None)
    }

    pub fn start_tls(dir: &Path, tls: SmtpTls) -> SmtpServer {
        let maildir = dir.join("maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        if tls != SmtpTls::None {
            let (cert, key) = self_signed(dir);
            let (cert_flag, key_flag) = match tls {
                SmtpTls::StartTls => ("--tlscert", "--tlskey"),
                _ => ("--smtpscert", "--smtpskey"),
            };
            cmd.arg(cert_flag).arg(cert).arg(key_flag).arg(key);
        }
        let child = cmd
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd; .ci/run does)");
        let end = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "aiosmtpd did not start: is it installed? (python3 -m pip install aiosmtpd)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer {
            child,
            port,
            maildir,
        }
    }

    /// Raw messages delivered so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut out = vec![];
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read(e.path()).unwrap());
                }
            }
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! `flowctl open` (alias `dashboard`): a one-time, short-lived login link for
//! the dashboard, printed and opened in a browser where there is one.

use super::{CmdResult, Exit, print_json};
use crate::client::Client;

pub async fn open(client: &Client, no_browser: bool, json: bool) -> CmdResult {
    let link = client.ui_link().await?;
    let url = format!(
        "{}{}",
        client.base_url(),
        link["path"].as_str().unwrap_or_default()
    );
    if json {
        print_json(&serde_json::json!({"url": url, "expiresAt": link["expiresAt"]}));
        return Ok(Exit::Ok);
    }
    println!("{url}");
    eprintln!(
        "a one-time login link for the dashboard at {}/ui, valid for 2 minutes",
        client.base_url()
    );
    if !no_browser && let Some(opener) = browser_opener() {
        let opened = std::process::Command::new(opener)
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok();
        if opened {
            eprintln!("opened it with {opener}");
        }
    }
    Ok(Exit::Ok)
}

/// `open` on macOS; `xdg-open` where a desktop session is running.
fn browser_opener() -> Option<&'static str> {
    if cfg!(target_os = "macos") {
        return Some("open");
    }
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    desktop.then_some("xdg-open")
}

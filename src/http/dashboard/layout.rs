//! The page shell (head, navigation, "Log out") and small rendering helpers
//! shared by the pages: status badges that say their status in words, times,
//! durations, pretty JSON, and the hidden CSRF field of every form.

use super::session::Session;
use crate::scope::Scope;
use crate::time::rfc3339;
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// What the shell needs to know about the page and who is looking.
pub struct Shell {
    title: String,
    active: &'static str,
    session: Option<Session>,
}

impl Shell {
    pub fn anonymous(title: &str) -> Shell {
        Shell {
            title: title.to_string(),
            active: "",
            session: None,
        }
    }

    pub fn new(title: &str, active: &'static str, session: &Session) -> Shell {
        Shell {
            title: title.to_string(),
            active,
            session: Some(session.clone()),
        }
    }
}

pub fn page(shell: &Shell, body: Markup) -> Markup {
    let nav_item = |href: &str, label: &str, key: &str| {
        html! {
            li {
                @if shell.active == key {
                    a href=(href) aria-current="page" { (label) }
                } @else {
                    a href=(href) { (label) }
                }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (shell.title) " · flowctl" }
                link rel="icon" type="image/svg+xml" href=(super::icon_url());
                link rel="stylesheet" href=(super::css_url());
                script src=(super::js_url()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/runs" { "flowctl" }
                    @if let Some(s) = &shell.session {
                        nav aria-label="Main" {
                            ul {
                                @if s.can(Scope::RunsRead) {
                                    (nav_item("/ui/overview", "Overview", "overview"))
                                    (nav_item("/ui/runs", "Runs", "runs"))
                                }
                                @if s.can(Scope::WorkflowsRead) {
                                    (nav_item("/ui/workflows", "Workflows", "workflows"))
                                }
                            }
                        }
                        form.logout method="post" action="/ui/logout" {
                            (csrf_field(s))
                            span.who { "Key: " (s.key_name) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

pub fn csrf_field(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf_token); }
}

/// A status as a word in a badge; the colour only repeats what the word says.
pub fn badge(status: &str) -> Markup {
    let icon = match status {
        "completed" => "✓",
        "failed" | "timed_out" => "✗",
        "cancelled" => "⊘",
        "running" | "retrying" => "▶",
        "waiting" => "⏸",
        "pending" => "◷",
        "skipped" => "–",
        "active" => "●",
        "paused" => "❚❚",
        _ => "•",
    };
    html! {
        span class={ "badge status-" (status) } {
            span aria-hidden="true" { (icon) " " }
            (status.replace('_', " "))
        }
    }
}

/// `2026-01-15 10:00:05 UTC`, in a `<time>` carrying the exact instant.
pub fn time(ms: i64) -> Markup {
    let exact = rfc3339(ms);
    let shown = format!("{} {} UTC", &exact[..10], &exact[11..19]);
    html! { time datetime=(exact) title=(shown) { (shown) } }
}

/// A schedule's instant, shown (by app.js) in the schedule's own time zone.
pub fn zoned_time(ms: i64, tz: Option<&str>) -> Markup {
    let exact = rfc3339(ms);
    let shown = format!("{} {} UTC", &exact[..10], &exact[11..19]);
    html! { time datetime=(exact) title=(shown) data-tz=[tz] { (shown) } }
}

/// A long text (an upstream HTML error page) clamped to its first line, with
/// the whole of it one click away.
pub fn clamped(text: &str) -> Markup {
    const MAX: usize = 140;
    if text.chars().count() <= MAX && !text.contains('\n') {
        return html! { (text) };
    }
    let head: String = text
        .chars()
        .take(MAX)
        .collect::<String>()
        .replace('\n', " ");
    html! {
        details.clamp {
            summary { (head) "…" }
            div.full { (text) }
        }
    }
}

pub fn opt_time(ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => time(ms),
        None => html! { span.muted { "—" } },
    }
}

pub fn duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

pub fn opt_duration(start: Option<i64>, end: Option<i64>) -> Markup {
    match (start, end) {
        (Some(s), Some(e)) => html! { (duration(e - s)) },
        _ => html! { span.muted { "—" } },
    }
}

/// JSON pretty-printed in a scrollable, focusable block (so keyboard users can scroll it).
pub fn json_block(label: &str, v: &Value) -> Markup {
    if v.is_null() {
        return html! { p.muted { "No " (label.to_lowercase()) "." } };
    }
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json tabindex="0" aria-label=(label) { code { (text) } } }
}

/// `code: message` of an error object, for one-line displays.
pub fn error_line(e: &Value) -> String {
    match (
        e.get("code").and_then(Value::as_str),
        e.get("message").and_then(Value::as_str),
    ) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) if e.is_null() => String::new(),
        _ => e.to_string(),
    }
}

/// A POST button form with the CSRF token (the state-changing actions).
pub fn action_button(s: &Session, action: &str, label: &str, id: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(s))
            button #(id) class=(class) type="submit" { (label) }
        }
    }
}

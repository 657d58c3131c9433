//! `/ui/overview`: runs finished per minute by status over the last hour (a
//! stacked SVG bar chart with a table behind it), counts by status, failures,
//! queue depth and p50/p99 duration. Every figure comes from indexed ranges.

use super::layout::{self, Shell, badge};
use super::session::Session;
use super::{Page, PageError};
use crate::http::AppState;
use crate::scope::Scope;
use axum::extract::State;
use maud::{Markup, html};

const FINISHED: [&str; 4] = crate::engine::RunStatus::TERMINAL_NAMES;

pub async fn show(State(state): State<AppState>, session: Session) -> Result<Page, PageError> {
    session.principal.require(&[Scope::RunsRead])?;
    let now = crate::time::now_ms();
    let o = state.store.overview(now).await?;
    // minutes[m][status index] = runs finished in that minute with that status.
    let mut minutes = [[0i64; 4]; 60];
    let mut totals = [0i64; 4];
    for (m, status, n) in &o.per_minute {
        if let (Ok(m), Some(i)) = (
            usize::try_from(*m),
            FINISHED.iter().position(|s| s == status),
        ) && m < 60
        {
            minutes[m][i] += n;
            totals[i] += n;
        }
    }
    let in_flight = |s: &str| {
        o.in_flight
            .iter()
            .find(|(st, _)| st == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let failures = totals[1] + totals[3];
    let pct = |v: Option<i64>| v.map(layout::duration).unwrap_or_else(|| "—".into());
    let body = html! {
        h1 { "Overview" }
        p.muted { "The last hour, up to " (layout::time(now)) "." }
        ul.stats {
            li { span.stat-label { "Completed" } span.stat-value { (totals[0]) } }
            li { span.stat-label { "Failures (failed or timed out)" } span.stat-value { (failures) } }
            li { span.stat-label { "Queue depth (due, waiting for a worker)" } span.stat-value { (o.queue_depth) } }
            li { span.stat-label { "Running now" } span.stat-value { (in_flight("running")) } }
            li { span.stat-label { "p50 duration" } span.stat-value { (pct(o.p50_ms)) } }
            li { span.stat-label { "p99 duration" } span.stat-value { (pct(o.p99_ms)) } }
        }
        section aria-labelledby="chart-title" {
            h2 #chart-title { "Runs per minute by status" }
            (chart(&minutes))
            ul.legend aria-label="Legend" {
                @for s in FINISHED { li { span class={ "swatch status-" (s) } aria-hidden="true" {} (s.replace('_', " ")) } }
            }
        }
        section aria-labelledby="counts-title" {
            h2 #counts-title { "Counts by status" }
            table.counts {
                thead { tr { th scope="col" { "Status" } th scope="col" { "Runs" } th scope="col" { "" } } }
                tbody {
                    @for (i, s) in FINISHED.iter().enumerate() {
                        tr { td { (badge(s)) } td { (totals[i]) } td.muted { "finished in the last hour" } }
                    }
                    @for s in ["running", "pending"] {
                        tr { td { (badge(s)) } td { (in_flight(s)) } td.muted { "now" } }
                    }
                }
            }
        }
    };
    Ok(Page::ok(layout::page(
        &Shell::new("Overview", "overview", &session),
        body,
    )))
}

fn chart(minutes: &[[i64; 4]; 60]) -> Markup {
    const W: i64 = 960;
    const H: i64 = 200;
    const LEFT: i64 = 40;
    let max = minutes
        .iter()
        .map(|m| m.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let bar_w = (W - LEFT) / 60;
    let total: i64 = minutes.iter().flatten().sum();
    let label = format!(
        "Stacked bar chart: {total} runs finished in the last hour, at most {max} in one minute"
    );
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H + 24) } role="img" aria-label=(label) {
            title { (label) }
            line.tick x1=(LEFT) x2=(W) y1=(H) y2=(H) {}
            text.axis x=(LEFT - 6) y="12" text-anchor="end" { (max) }
            text.axis x=(LEFT - 6) y=(H) text-anchor="end" { "0" }
            text.axis x=(LEFT) y=(H + 18) { "−60 min" }
            text.axis x=(LEFT + (W - LEFT) / 2) y=(H + 18) text-anchor="middle" { "−30 min" }
            text.axis x=(W) y=(H + 18) text-anchor="end" { "now" }
            @for (m, counts) in minutes.iter().enumerate() {
                @let x = LEFT + bar_w * m as i64;
                @let mut y = H;
                @for (i, n) in counts.iter().enumerate() {
                    @if *n > 0 {
                        @let h = (n * (H - 10) / max).max(1);
                        @let top = { y -= h; y };
                        rect class={ "bar status-" (FINISHED[i]) } x=(x + 1) y=(top) width=(bar_w - 2) height=(h) {
                            title { (n) " " (FINISHED[i].replace('_', " ")) ", minute " (m as i64 - 60) }
                        }
                    }
                }
            }
        }
    }
}

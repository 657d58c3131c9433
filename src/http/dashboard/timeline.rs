//! The run's step timeline as inline SVG: one bar per step drawn to scale
//! between the run's start and its end (or now), with the step's label,
//! status and duration in text, so no colour carries meaning alone.

use crate::api::StepView;
use crate::time::parse_rfc3339;
use maud::{Markup, html};

const WIDTH: i64 = 1000;
const LABEL_W: i64 = 300;
const ROW_H: i64 = 30;
const AXIS_H: i64 = 24;

pub fn render(steps: &[StepView], t0: i64, t1: i64) -> Markup {
    let span = (t1 - t0).max(1);
    let plot_w = WIDTH - LABEL_W - 10;
    let x_of = |t: i64| LABEL_W + ((t - t0).clamp(0, span) * plot_w) / span;
    let height = AXIS_H + ROW_H * steps.len() as i64 + 6;
    let view_box = format!("0 0 {WIDTH} {height}");
    let summary = format!(
        "Timeline of {} steps over {}",
        steps.len(),
        super::layout::duration(span)
    );
    html! {
        svg.timeline viewBox=(view_box) role="img" aria-label=(summary) preserveAspectRatio="xMinYMin meet" {
            title { (summary) }
            @for i in 0..=4 {
                @let x = LABEL_W + plot_w * i / 4;
                line.tick x1=(x) x2=(x) y1=(AXIS_H - 6) y2=(height) {}
                text.axis x=(x) y=(AXIS_H - 10) text-anchor=(if i == 0 { "start" } else if i == 4 { "end" } else { "middle" }) {
                    "+" (tick_label(span, i))
                }
            }
            @for (i, s) in steps.iter().enumerate() {
                @let y = AXIS_H + ROW_H * i as i64;
                @let start = s.started_at.as_deref().and_then(parse_rfc3339);
                @let end = s.completed_at.as_deref().and_then(parse_rfc3339).or(start.map(|_| t1));
                @let label = match &s.name { Some(n) => format!("{} — {}", s.id, n), None => s.id.clone() };
                g.row {
                    text.label x="4" y=(y + 19) { (truncate(&label, 34)) }
                    @if let (Some(a), Some(b)) = (start, end) {
                        @let (xa, xb) = (x_of(a), x_of(b));
                        @let w = (xb - xa).max(3);
                        rect class={ "bar status-" (s.status) } x=(xa) y=(y + 6) width=(w) height=(ROW_H - 12) rx="3" {
                            title { (label) ": " (s.status) ", " (super::layout::duration(b - a)) ", attempts " (s.attempts) }
                        }
                        // Right of the bar when there is room; else inside its end
                        // (light text), or left of it, but never over the label column.
                        @let (text_x, anchor, class) = if xa + w + 170 < WIDTH {
                            (xa + w + 6, "start", "bar-text")
                        } else if w >= 170 || xa - 170 < LABEL_W {
                            (xb - 6, "end", "bar-text inside")
                        } else {
                            (xa - 6, "end", "bar-text")
                        };
                        text class=(class) x=(text_x) y=(y + 19) text-anchor=(anchor) {
                            (s.status.replace('_', " ")) " · " (super::layout::duration(b - a))
                            @if s.attempts > 1 { " · " (s.attempts) " attempts" }
                        }
                    } @else {
                        text.bar-text x=(LABEL_W + 6) y=(y + 19) { (s.status.replace('_', " ")) " · not started" }
                    }
                }
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Tick labels keep a decimal on very short runs, so they do not all read "+0 ms".
fn tick_label(span: i64, i: i64) -> String {
    let ms = span as f64 * i as f64 / 4.0;
    if span < 20 {
        format!("{ms:.1} ms")
    } else {
        super::layout::duration(ms as i64)
    }
}

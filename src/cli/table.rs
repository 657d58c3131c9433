//! Lists on stdout the way gh prints them: on a terminal, aligned columns
//! under a header, with times relative to now ("3 minutes ago"); otherwise
//! tab-separated rows without a header and with exact RFC 3339 times, for
//! `cut` and `awk`.

use std::io::IsTerminal;

/// One cell: plain text, or a timestamp shown relative on a terminal.
pub enum Cell {
    Text(String),
    Time(Option<String>),
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: vec![],
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        print!("{}", self.render(std::io::stdout().is_terminal(), now_ms()));
    }

    /// The table as text: aligned for a terminal, else tab-separated.
    pub fn render(&self, terminal: bool, now_ms: i64) -> String {
        let text = |c: &Cell| match c {
            Cell::Text(s) => s.clone(),
            Cell::Time(None) => "-".into(),
            Cell::Time(Some(t)) if terminal => relative(t, now_ms),
            Cell::Time(Some(t)) => t.clone(),
        };
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(text).collect())
            .collect();
        let mut out = String::new();
        if !terminal {
            for r in &rows {
                out.push_str(&r.join("\t"));
                out.push('\n');
            }
            return out;
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |cells: Vec<String>, out: &mut String| {
            let last = cells.len().saturating_sub(1);
            for (i, c) in cells.into_iter().enumerate() {
                if i == last {
                    out.push_str(&c);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    out.push_str(&format!("{c:<pad$}  "));
                }
            }
            out.push('\n');
        };
        line(
            self.headers.iter().map(|h| h.to_string()).collect(),
            &mut out,
        );
        for r in rows {
            line(r, &mut out);
        }
        out
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `just now`, `5 seconds ago`, `3 minutes ago`, `in 2 hours`, `4 days ago`.
pub fn relative(rfc3339: &str, now_ms: i64) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return rfc3339.to_string();
    };
    let diff = now_ms - t.timestamp_millis();
    let secs = diff.abs() / 1000;
    if secs < 2 {
        return "just now".into();
    }
    let (n, unit) = match secs {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 60 => (s / 86_400, "day"),
        s => (s / (86_400 * 30), "month"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if diff >= 0 {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_tables_align_under_a_header_and_pipes_get_tabs() {
        let mut t = Table::new(&["ID", "STATUS", "CREATED"]);
        t.row(vec![
            "run_a".into(),
            "completed".into(),
            Cell::Time(Some("2026-01-01T00:00:00.000Z".into())),
        ]);
        t.row(vec!["run_bbbbbb".into(), "failed".into(), Cell::Time(None)]);
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:03:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            t.render(true, now),
            "ID          STATUS     CREATED\nrun_a       completed  3 minutes ago\nrun_bbbbbb  failed     -\n"
        );
        assert_eq!(
            t.render(false, now),
            "run_a\tcompleted\t2026-01-01T00:00:00.000Z\nrun_bbbbbb\tfailed\t-\n"
        );
        assert_eq!(relative("2026-01-01T01:03:00Z", now), "in 1 hour");
    }
}

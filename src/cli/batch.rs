//! `flowctl run WORKFLOW --batch FILE`: one run per input, paced by the
//! server's `X-RateLimit-*` and `Retry-After` answers so that a batch larger
//! than the rate limit costs few extra requests. Each input's idempotency key
//! comes from `--key-field`, or from the file name, line and a digest of the
//! input, so running the same file twice starts nothing new while a new file
//! with an old name still runs. Results are JSON lines on stdout.

use super::run::{RunArgs, is_finished, text, trigger_failure};
use super::{CmdResult, Exit, Failure};
use crate::api::TriggerRequest;
use crate::client::{Client, ClientError};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// One input of the batch: where it came from and its idempotency key.
struct Item {
    line: usize,
    key: String,
    input: Value,
}

/// Inputs of a JSON array (line = position, from 1) or of JSON lines.
fn read_items(
    file: &Path,
    key_field: Option<&str>,
    skip_duplicates: bool,
) -> Result<Vec<Item>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let raw: Vec<(usize, Result<Value, String>)> = if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<Value>>(&text) {
            Ok(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i + 1, Ok(v)))
                .collect(),
            Err(e) => return Err(Failure::usage(format!("{name}: not a JSON array: {e}"))),
        }
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, serde_json::from_str(l).map_err(|e| e.to_string())))
            .collect()
    };
    let mut problems = vec![];
    let mut items = vec![];
    for (line, parsed) in raw {
        let input = match parsed {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                problems.push(format!("{name}:{line}: an input must be a JSON object"));
                continue;
            }
            Err(e) => {
                problems.push(format!("{name}:{line}: not valid JSON: {e}"));
                continue;
            }
        };
        let key = match key_field {
            None => format!("{name}:{line}:{}", digest(&input)),
            Some(f) => match &input[f] {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    problems.push(format!(
                        "{name}:{line}: --key-field '{f}' is missing or not a string or number"
                    ));
                    continue;
                }
            },
        };
        items.push(Item { line, key, input });
    }
    if !problems.is_empty() {
        return Err(Failure::usage(format!(
            "{} problem(s) in the batch file, nothing was started:\n  {}",
            problems.len(),
            problems.join("\n  ")
        )));
    }
    if items.is_empty() {
        return Err(Failure::usage(format!("{name}: no inputs")));
    }
    // A repeated --key-field value would silently drop every input after the first.
    let mut first_line: std::collections::HashMap<&str, usize> = Default::default();
    let mut repeats = vec![];
    let mut keep = vec![true; items.len()];
    for (i, item) in items.iter().enumerate() {
        match first_line.get(item.key.as_str()) {
            Some(first) => {
                repeats.push(format!(
                    "{name}:{}: key '{}' repeats line {first}",
                    item.line, item.key
                ));
                keep[i] = false;
            }
            None => {
                first_line.insert(&item.key, item.line);
            }
        }
    }
    if !repeats.is_empty() {
        if !skip_duplicates {
            return Err(Failure::usage(format!(
                "{} input(s) repeat a --key-field value, nothing was started (only the first of each would run; pass --skip-duplicates to run just the first):\n  {}",
                repeats.len(),
                repeats.join("\n  ")
            )));
        }
        eprintln!(
            "skipping {} input(s) whose --key-field value repeats an earlier line:\n  {}",
            repeats.len(),
            repeats.join("\n  ")
        );
    }
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(true));
    Ok(items)
}

/// 12 hex digits of the input's SHA-256: the same line again maps to the
/// same key, a changed line to a new one.
fn digest(input: &Value) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(input.to_string().as_bytes());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Request pacing from the rate-limit headers: once the allowance is used up,
/// send at the rate it refills (`limit` per minute), with a small margin.
#[derive(Default)]
struct Pacer {
    next_at: Option<Instant>,
    requests: usize,
    limited: usize,
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Pacer {
    async fn before_send(&mut self) {
        if let Some(at) = self.next_at.take() {
            tokio::time::sleep_until(at.into()).await;
        }
        self.requests += 1;
    }

    fn after_answer(&mut self, h: &HeaderMap) {
        let (Some(limit), Some(remaining)) = (
            header_u64(h, "x-ratelimit-limit"),
            header_u64(h, "x-ratelimit-remaining"),
        ) else {
            return;
        };
        if remaining == 0 && limit > 0 {
            // The refill interval plus 5 %, so the next request finds a token.
            let interval = Duration::from_micros(63_000_000 / limit);
            self.next_at = Some(Instant::now() + interval);
        }
    }

    fn after_limited(&mut self, h: &HeaderMap) {
        self.limited += 1;
        let secs = header_u64(h, "retry-after").unwrap_or(1).clamp(1, 60);
        self.next_at = Some(Instant::now() + Duration::from_secs(secs));
    }
}

pub async fn run_batch(client: &Client, args: &RunArgs, file: &Path) -> CmdResult {
    let items = read_items(file, args.key_field.as_deref(), args.skip_duplicates)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(items.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} triggered {msg} ({eta} left)",
        ) {
            pb.set_style(style);
        }
        pb
    });
    let mut pacer = Pacer::default();
    let mut results: Vec<Value> = Vec::with_capacity(items.len());
    let (mut started, mut replayed, mut rejected, mut differs) = (0, 0, 0, 0);
    for item in &items {
        let body = TriggerRequest {
            input: Some(item.input.clone()),
            connection_id: args.connection.clone(),
            idempotency_key: Some(item.key.clone()),
            trigger_type: Some("batch".into()),
            as_schedule: false,
        };
        let result = loop {
            pacer.before_send().await;
            match client.trigger(&args.workflow_id, &body, None).await {
                Ok(answer) => {
                    pacer.after_answer(&answer.headers);
                    let again = answer.status.as_u16() == 200;
                    if again {
                        replayed += 1;
                    } else {
                        started += 1;
                    }
                    let mut r = json!({"key": item.key, "line": item.line, "runId": answer.data.run_id,
                                 "status": answer.data.status, "replayed": again});
                    if answer.data.input_differs {
                        differs += 1;
                        r["inputDiffers"] = json!(true);
                    }
                    break r;
                }
                Err(ClientError::Rejected {
                    status: 429,
                    headers,
                    ..
                }) => pacer.after_limited(&headers),
                Err(ClientError::Rejected {
                    status,
                    error,
                    headers,
                    hint,
                }) => {
                    rejected += 1;
                    if error.code == crate::api::codes::NOT_FOUND
                        || error.code == crate::api::codes::INVALID_STATUS
                        || status == 401
                        || status == 403
                    {
                        // The workflow or the key is wrong: every other input would fail alike.
                        let e = ClientError::Rejected {
                            status,
                            error,
                            headers,
                            hint,
                        };
                        return Err(trigger_failure(client, &args.workflow_id, e).await);
                    }
                    break json!({"key": item.key, "line": item.line, "error": error});
                }
                Err(e) => return Err(e.into()),
            }
        };
        if !args.wait {
            println!("{result}");
        }
        results.push(result);
        if let Some(pb) = &bar {
            pb.inc(1);
            pb.set_message(format!(
                "{started} new, {replayed} replayed, {rejected} rejected"
            ));
        }
    }
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let mut failed = 0;
    if args.wait {
        for r in results.iter_mut() {
            let Some(id) = r["runId"].as_str().map(String::from) else {
                println!("{r}");
                continue;
            };
            let run = loop {
                let run = client.run(&id, Some(30.0)).await?;
                if is_finished(&run.status) {
                    break run;
                }
            };
            if run.status == "completed" {
                r["output"] = run.output.clone();
            } else {
                failed += 1;
                r["error"] = run.error.clone();
            }
            r["status"] = json!(run.status);
            println!("{r}");
        }
    }
    eprintln!(
        "{} input(s): {started} started, {replayed} started nothing because they had run before (same key){}, {rejected} rejected{}; {} request(s), {} rate-limited",
        items.len(),
        if differs > 0 {
            format!(" ({differs} of them with a different input than that first run)")
        } else {
            String::new()
        },
        if args.wait {
            format!(", {failed} did not complete")
        } else {
            String::new()
        },
        pacer.requests,
        pacer.limited,
    );
    for r in results.iter().filter(|r| r.get("inputDiffers").is_some()) {
        eprintln!(
            "  line {}: key {} was used before with a different input; its first run {} stands",
            r["line"],
            r["key"],
            text(&r["runId"])
        );
    }
    for r in results.iter().filter(|r| r.get("error").is_some()) {
        let e = &r["error"];
        let mut why = text(&e["message"]);
        for d in e["details"].as_array().into_iter().flatten() {
            if let Ok(d) = serde_json::from_value::<crate::api::ErrorDetail>(d.clone()) {
                why.push_str(&format!("; {}: {}", d.dotted_path(), d.message));
            }
        }
        eprintln!("  line {}: {why}", r["line"]);
    }
    Ok(if rejected > 0 || differs > 0 {
        Exit::Usage
    } else if failed > 0 {
        Exit::RunFailed
    } else {
        Exit::Ok
    })
}

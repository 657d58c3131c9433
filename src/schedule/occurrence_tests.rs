//! DST cases on America/New_York's real 2026 transitions (spring forward on
//! March 8 at 02:00, fall back on November 1 at 02:00), and interval alignment.

use super::*;
use crate::workflow::trigger::ScheduleDef;
use crate::workflow::{TriggerDef, compile};
use serde_json::{Value, json};

fn sched(trigger: Value) -> ScheduleDef {
    let def = json!({"name": "s", "trigger": trigger,
        "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]});
    match compile(&def).expect("valid definition").trigger {
        TriggerDef::Schedule(s) => *s,
        other => panic!("not a schedule: {other:?}"),
    }
}

fn ny(cron: &str) -> ScheduleDef {
    sched(json!({"type": "schedule", "cron": cron, "timezone": "America/New_York"}))
}

fn utc(s: &str) -> i64 {
    crate::time::parse_rfc3339(s).expect("timestamp")
}

fn show(v: &[i64]) -> Vec<String> {
    v.iter().map(|t| crate::time::rfc3339(*t)).collect()
}

#[test]
fn a_time_in_the_spring_gap_fires_just_after_it() {
    let s = ny("30 2 * * *");
    // 02:30 does not exist on March 8: 03:00 EDT is 07:00Z.
    let first = next_after(&s, utc("2026-03-07T17:00:00Z")).unwrap();
    assert_eq!(crate::time::rfc3339(first), "2026-03-08T07:00:00.000Z");
    let second = next_after(&s, first).unwrap();
    assert_eq!(crate::time::rfc3339(second), "2026-03-09T06:30:00.000Z");
    assert_eq!(
        latest_at_or_before(&s, utc("2026-03-08T08:00:00Z")),
        Some(first)
    );
}

#[test]
fn every_time_in_the_spring_gap_collapses_into_one_firing() {
    let s = ny("*/15 2 * * *");
    let got = between(
        &s,
        utc("2026-03-08T05:00:00Z"),
        utc("2026-03-08T09:00:00Z"),
        100,
    );
    assert_eq!(show(&got), ["2026-03-08T07:00:00.000Z"]);
}

#[test]
fn a_repeated_time_in_the_fall_fires_once_at_the_earlier_instant() {
    let s = ny("30 1 * * *");
    let first = next_after(&s, utc("2026-10-31T12:00:00Z")).unwrap();
    assert_eq!(crate::time::rfc3339(first), "2026-11-01T05:30:00.000Z"); // 01:30 EDT
    let second = next_after(&s, first).unwrap();
    assert_eq!(crate::time::rfc3339(second), "2026-11-02T06:30:00.000Z"); // 01:30 EST, next day
}

#[test]
fn the_repeated_hour_is_walked_once() {
    let s = ny("*/15 1 * * *");
    let got = between(
        &s,
        utc("2026-11-01T04:00:00Z"),
        utc("2026-11-01T08:00:00Z"),
        100,
    );
    assert_eq!(
        show(&got),
        [
            "2026-11-01T05:00:00.000Z",
            "2026-11-01T05:15:00.000Z",
            "2026-11-01T05:30:00.000Z",
            "2026-11-01T05:45:00.000Z"
        ]
    );
    // Looking back from inside the second pass (01:10 EST) finds 01:45 EDT.
    assert_eq!(
        latest_at_or_before(&s, utc("2026-11-01T06:10:00Z")),
        Some(utc("2026-11-01T05:45:00Z"))
    );
    // And the next one after the first pass is the next day's.
    assert_eq!(
        next_after(&s, utc("2026-11-01T05:45:00Z")),
        Some(utc("2026-11-02T06:00:00Z"))
    );
}

#[test]
fn an_hourly_pattern_skips_the_repeated_hour_and_keeps_the_others() {
    let s = ny("0 * * * *");
    let got = between(
        &s,
        utc("2026-11-01T04:00:00Z"),
        utc("2026-11-01T08:00:00Z"),
        100,
    );
    assert_eq!(
        show(&got),
        [
            "2026-11-01T04:00:00.000Z",
            "2026-11-01T05:00:00.000Z",
            "2026-11-01T07:00:00.000Z",
            "2026-11-01T08:00:00.000Z"
        ]
    );
    let spring = between(
        &s,
        utc("2026-03-08T05:00:00Z"),
        utc("2026-03-08T09:00:00Z"),
        100,
    );
    assert_eq!(
        show(&spring),
        [
            "2026-03-08T05:00:00.000Z",
            "2026-03-08T06:00:00.000Z",
            "2026-03-08T07:00:00.000Z",
            "2026-03-08T08:00:00.000Z",
            "2026-03-08T09:00:00.000Z"
        ]
    );
}

#[test]
fn daily_intervals_follow_local_midnight_across_transitions() {
    let s = sched(
        json!({"type": "schedule", "interval": {"value": 1, "unit": "days"},
        "timezone": "America/New_York"}),
    );
    let a = next_after(&s, utc("2026-03-07T12:00:00Z")).unwrap();
    let b = next_after(&s, a).unwrap();
    assert_eq!(
        show(&[a, b]),
        ["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]
    );
    let weekly = sched(json!({"type": "schedule", "interval": {"value": 1, "unit": "weeks"}}));
    // 2026-03-09 is a Monday.
    assert_eq!(
        next_after(&weekly, utc("2026-03-04T00:00:00Z")),
        Some(utc("2026-03-09T00:00:00Z"))
    );
}

#[test]
fn second_intervals_are_aligned_to_the_epoch() {
    let s = sched(json!({"type": "schedule", "interval": {"value": 2, "unit": "seconds"}}));
    assert_eq!(next_after(&s, 1_500), Some(2_000));
    assert_eq!(next_after(&s, 2_000), Some(4_000));
    assert_eq!(latest_at_or_before(&s, 5_999), Some(4_000));
    assert_eq!(between(&s, 1, 10_000, 3), vec![6_000, 8_000, 10_000]);
}

#[test]
fn schedule_definitions_are_checked_with_paths() {
    let issues = |t: Value| -> Vec<(String, String)> {
        let def = json!({"name": "s", "trigger": t,
            "steps": [{"id": "t", "type": "transform", "config": {"mapping": {}}}]});
        compile(&def)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|i| (Value::Array(i.path).to_string(), i.message))
            .collect()
    };
    let got = issues(json!({"type": "schedule", "cron": "0 0 9 * * 1"}));
    assert_eq!(got[0].0, r#"["trigger","cron"]"#, "{got:?}");
    assert!(got[0].1.contains("5 fields"), "{got:?}");
    let got = issues(json!({"type": "schedule", "cron": "61 * * * *"}));
    assert!(got[0].1.starts_with("not a valid cron pattern"), "{got:?}");
    let got = issues(json!({"type": "schedule", "cron": "* * * * *",
        "interval": {"value": 1, "unit": "minutes"}}));
    assert!(got[0].1.contains("not both"), "{got:?}");
    let got = issues(
        json!({"type": "schedule", "interval": {"value": 0, "unit": "fortnights"},
        "timezone": "Mars/Olympus", "overlap": "cancel", "catchUp": 3, "jitterMs": -1,
        "enabled": "yes", "croon": "x"}),
    );
    let paths: Vec<_> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            r#"["trigger","interval","value"]"#,
            r#"["trigger","interval","unit"]"#,
            r#"["trigger","timezone"]"#,
            r#"["trigger","enabled"]"#,
            r#"["trigger","overlap"]"#,
            r#"["trigger","catchUp"]"#,
            r#"["trigger","jitterMs"]"#,
            r#"["trigger","croon"]"#
        ],
        "{got:?}"
    );
}

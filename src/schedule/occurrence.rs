//! When a schedule fires (pure): occurrence instants in milliseconds since the
//! epoch, computed from a cron pattern or an interval in the schedule's zone.
//!
//! Cron patterns and `days`/`weeks` intervals are evaluated on local wall-clock
//! times, each wall time once, then mapped to an instant: a time that does not
//! exist (spring forward) fires at the first instant after the gap, a time that
//! happens twice (fall back) fires once, at the earlier instant. That mapping
//! is monotone, which is what makes the searches below simple. `seconds`,
//! `minutes` and `hours` intervals are real durations aligned to the Unix
//! epoch, so every node computes the same instants.

use crate::workflow::trigger::{IntervalUnit, Recurrence, ScheduleDef};
use chrono::{Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike as _};
use chrono_tz::Tz;

/// How far a wall-clock time can sit from its instant's naive UTC-offset
/// rendering around a transition; searches start this far out.
const DST_MARGIN: Duration = match Duration::new(3 * 3600, 0) {
    Some(d) => d,
    None => Duration::zero(),
};
const MINUTE: Duration = match Duration::new(60, 0) {
    Some(d) => d,
    None => Duration::zero(),
};
/// Bound on search steps, so a pattern that never matches cannot spin.
const MAX_STEPS: usize = 100_000;

fn local(tz: Tz, ms: i64) -> NaiveDateTime {
    tz.timestamp_millis_opt(ms)
        .single()
        .map(|d| d.naive_local())
        .unwrap_or_default()
}

/// The instant a wall-clock time fires at (the DST rule above).
pub fn resolve(tz: Tz, naive: NaiveDateTime) -> i64 {
    let mut n = naive;
    // Gaps are whole minutes long in every zone in use; a day bounds the walk.
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&n) {
            LocalResult::Single(d) => return d.timestamp_millis(),
            LocalResult::Ambiguous(earlier, _) => return earlier.timestamp_millis(),
            LocalResult::None => {
                let Some(next) = n.checked_add_signed(MINUTE) else {
                    break;
                };
                n = next.with_second(0).unwrap_or(next)
            }
        }
    }
    naive.and_utc().timestamp_millis()
}

/// Wall-clock recurrences: the next matching wall time strictly after `n`,
/// or the last one at or before it.
enum Wall<'a> {
    Cron(&'a croner::Cron),
    /// Local midnight every `n` days, counted from `anchor`.
    Days {
        n: i64,
        anchor: NaiveDate,
    },
}

impl Wall<'_> {
    fn after(&self, n: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            Wall::Cron(c) => c.find_next_occurrence(&n, false).ok(),
            Wall::Days { n: every, anchor } => {
                let midnight = n.date().and_hms_opt(0, 0, 0)?;
                let mut day = (n.date() - *anchor).num_days();
                if midnight <= n {
                    day += 1;
                }
                let k = day.div_euclid(*every) * every
                    + if day.rem_euclid(*every) == 0 {
                        0
                    } else {
                        *every
                    };
                anchor
                    .checked_add_signed(Duration::try_days(k)?)?
                    .and_hms_opt(0, 0, 0)
            }
        }
    }

    fn at_or_before(&self, n: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            Wall::Cron(c) => c.find_previous_occurrence(&n, true).ok(),
            Wall::Days { n: every, anchor } => {
                let day = (n.date() - *anchor).num_days();
                let k = day.div_euclid(*every) * every;
                anchor
                    .checked_add_signed(Duration::try_days(k)?)?
                    .and_hms_opt(0, 0, 0)
            }
        }
    }
}

fn wall(r: &Recurrence) -> Option<Wall<'_>> {
    // 1970-01-01 for days; Monday 1970-01-05 so weekly runs start on Mondays.
    let day0 = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let monday0 = NaiveDate::from_ymd_opt(1970, 1, 5)?;
    match r {
        Recurrence::Cron(c) => Some(Wall::Cron(c)),
        Recurrence::Interval {
            value,
            unit: IntervalUnit::Days,
        } => Some(Wall::Days {
            n: i64::from(*value),
            anchor: day0,
        }),
        Recurrence::Interval {
            value,
            unit: IntervalUnit::Weeks,
        } => Some(Wall::Days {
            n: i64::from(*value) * 7,
            anchor: monday0,
        }),
        Recurrence::Interval { .. } => None,
    }
}

/// A fixed period in milliseconds (`seconds`, `minutes`, `hours`).
fn period_ms(r: &Recurrence) -> Option<i64> {
    match r {
        Recurrence::Interval { value, unit } => {
            let unit_ms = match unit {
                IntervalUnit::Seconds => 1_000,
                IntervalUnit::Minutes => 60_000,
                IntervalUnit::Hours => 3_600_000,
                IntervalUnit::Days | IntervalUnit::Weeks => return None,
            };
            Some(i64::from(*value) * unit_ms)
        }
        Recurrence::Cron(_) => None,
    }
}

/// The first occurrence strictly after `after`.
pub fn next_after(def: &ScheduleDef, after: i64) -> Option<i64> {
    if let Some(p) = period_ms(&def.recurrence) {
        return Some((after.div_euclid(p) + 1) * p);
    }
    let w = wall(&def.recurrence)?;
    // Wall times before `after`'s own resolve to instants at or before it.
    let mut n = local(def.timezone, after);
    for _ in 0..MAX_STEPS {
        n = w.after(n)?;
        let at = resolve(def.timezone, n);
        if at > after {
            return Some(at);
        }
    }
    None
}

/// The last occurrence at or before `at`.
pub fn latest_at_or_before(def: &ScheduleDef, at: i64) -> Option<i64> {
    if let Some(p) = period_ms(&def.recurrence) {
        return Some(at.div_euclid(p) * p);
    }
    let w = wall(&def.recurrence)?;
    // In a repeated hour, wall times later than `at`'s own can be earlier
    // instants; start past them and walk back.
    let mut n = w.at_or_before(local(def.timezone, at) + DST_MARGIN)?;
    for _ in 0..MAX_STEPS {
        let instant = resolve(def.timezone, n);
        if instant <= at {
            return Some(instant);
        }
        n = w.at_or_before(n.checked_sub_signed(Duration::try_seconds(1)?)?)?;
    }
    None
}

/// Occurrences in `[from, to]`, ascending: the latest `max` of them.
pub fn between(def: &ScheduleDef, from: i64, to: i64, max: usize) -> Vec<i64> {
    let mut out = Vec::new();
    let mut cursor = to;
    while out.len() < max {
        match latest_at_or_before(def, cursor) {
            Some(t) if t >= from => {
                out.push(t);
                cursor = t - 1;
            }
            _ => break,
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
#[path = "occurrence_tests.rs"]
mod tests;

//! Which queued runs a claim may take, and so which count as due: one rule
//! for both stores. A workflow with a `concurrency` cap has as many free
//! slots as its cap less its claimed runs (parked runs hold none); while it
//! has none, its queued runs wait for a slot, not for a time, so they are
//! neither claimed nor reported as due (a dispatcher told "due now" about a
//! run it may not take would claim in a tight loop). Within one claim, a
//! capped workflow gets at most its free slots; the rest stay queued in order.

use std::collections::HashMap;

/// Free slots per capped workflow (workflows without a cap are absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    free: HashMap<String, i64>,
}

impl Caps {
    /// From each capped workflow's `(id, concurrency, claimed runs)`.
    pub fn new(rows: impl IntoIterator<Item = (String, i64, i64)>) -> Caps {
        Caps {
            free: rows
                .into_iter()
                .map(|(id, cap, claimed)| (id, cap - claimed))
                .collect(),
        }
    }

    /// Workflows whose queued runs a claim must skip (sorted, for stable SQL).
    pub fn full(&self) -> Vec<String> {
        let mut full: Vec<String> = self
            .free
            .iter()
            .filter(|(_, n)| **n <= 0)
            .map(|(id, _)| id.clone())
            .collect();
        full.sort();
        full
    }

    /// Whether a claim may take a run of `workflow_id` now.
    pub fn may_take(&self, workflow_id: &str) -> bool {
        self.free.get(workflow_id).is_none_or(|n| *n > 0)
    }

    /// Of `candidates` (in claim order), those one claim may take: each
    /// capped workflow gets at most its free slots, which are used up.
    pub fn admit<T>(&mut self, candidates: Vec<T>, workflow_of: impl Fn(&T) -> &str) -> Vec<T> {
        candidates
            .into_iter()
            .filter(|c| match self.free.get_mut(workflow_of(c)) {
                None => true,
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                Some(_) => false,
            })
            .collect()
    }
}

/// The earliest due time a dispatcher should wake for, from each workflow's
/// earliest queued run: runs of full workflows do not count.
pub fn next_due(
    earliest_by_workflow: impl IntoIterator<Item = (String, i64)>,
    caps: &Caps,
) -> Option<i64> {
    earliest_by_workflow
        .into_iter()
        .filter(|(wf, _)| caps.may_take(wf))
        .map(|(_, at)| at)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps::new([
            ("wf_full".to_string(), 1, 1),
            ("wf_two_free".to_string(), 3, 1),
            ("wf_over".to_string(), 1, 2),
        ])
    }

    #[test]
    fn a_full_workflow_is_skipped_and_an_uncapped_one_never() {
        let c = caps();
        assert_eq!(c.full(), vec!["wf_full".to_string(), "wf_over".to_string()]);
        assert!(!c.may_take("wf_full"));
        assert!(c.may_take("wf_two_free"));
        assert!(c.may_take("wf_uncapped"));
    }

    #[test]
    fn one_claim_takes_at_most_the_free_slots_in_order() {
        let mut c = caps();
        let runs = vec![
            ("wf_two_free", 1),
            ("wf_full", 2),
            ("wf_uncapped", 3),
            ("wf_two_free", 4),
            ("wf_two_free", 5),
            ("wf_uncapped", 6),
        ];
        let taken: Vec<i32> = c.admit(runs, |r| r.0).into_iter().map(|r| r.1).collect();
        assert_eq!(taken, vec![1, 3, 4, 6]);
        assert!(!c.may_take("wf_two_free"), "its slots are used up");
    }

    #[test]
    fn runs_behind_a_full_cap_are_not_due() {
        let c = caps();
        let earliest =
            |rows: &[(&str, i64)]| next_due(rows.iter().map(|(w, t)| (w.to_string(), *t)), &c);
        assert_eq!(earliest(&[("wf_full", 10), ("wf_over", 5)]), None);
        assert_eq!(
            earliest(&[("wf_full", 10), ("wf_two_free", 30), ("wf_x", 20)]),
            Some(20)
        );
        assert_eq!(earliest(&[]), None);
    }
}

//! The run lifecycle as a table: (state, event) → (state, effect), one row
//! per rule of `advance`. No runtime, no I/O.

use super::*;
use crate::workflow::{CompiledWorkflow, compile};
use serde_json::json;

const T0: i64 = 1_000_000;

fn wf(extra: Value, steps: Value) -> CompiledWorkflow {
    let mut def = json!({"name": "T", "steps": steps});
    if let (Some(d), Value::Object(e)) = (def.as_object_mut(), extra) {
        d.extend(e);
    }
    compile(&def).expect("valid test workflow")
}

fn http(id: &str, extra: Value) -> Value {
    let mut s = json!({"id": id, "type": "action", "action": "http.request", "config": {"url": "http://x"}});
    if let (Some(o), Value::Object(e)) = (s.as_object_mut(), extra) {
        o.extend(e);
    }
    s
}

fn transform(id: &str) -> Value {
    json!({"id": id, "type": "transform", "config": {"mapping": {"from": id}}})
}

fn fresh(w: &CompiledWorkflow) -> RunState {
    RunState::new(
        w,
        "run_1".into(),
        1,
        json!({}),
        RunStatus::Pending,
        None,
        false,
        vec![],
    )
}

/// A run that started at T0 with these step statuses (attempts 1 each).
fn started(w: &CompiledWorkflow, statuses: &[StepStatus]) -> RunState {
    let mut s = fresh(w);
    s.status = RunStatus::Running;
    s.started_at = Some(T0);
    for (rec, st) in s.steps.iter_mut().zip(statuses) {
        rec.status = *st;
        rec.started_at = Some(T0);
        if *st != StepStatus::Pending {
            rec.attempts = 1;
        }
        if st.is_settled() {
            rec.completed_at = Some(T0);
            rec.output = json!({"done": rec.step_id});
        }
    }
    s
}

fn failed(retryable: bool, retry_after_ms: Option<u64>) -> Event {
    Event::StepFailed {
        idx: 0,
        error: RunError::step("HTTP_STATUS", "upstream said 503"),
        retryable,
        retry_after_ms,
    }
}

/// What a row expects of the transition.
struct Expect {
    status: RunStatus,
    steps: &'static [StepStatus],
    effect: Effect,
    error_code: Option<&'static str>,
}

struct Row {
    rule: &'static str,
    workflow: CompiledWorkflow,
    state: RunState,
    event: Event,
    now: i64,
    expect: Expect,
}

fn exec(idx: usize, timeout_ms: u64) -> Effect {
    Effect::Execute {
        idx,
        config: json!({"url": "http://x"}),
        timeout_ms,
    }
}

fn rows() -> Vec<Row> {
    use RunStatus as R;
    use StepStatus::*;
    let two = wf(json!({}), json!([transform("a"), http("b", json!({}))]));
    let three = wf(
        json!({}),
        json!([http("a", json!({})), transform("b"), transform("c")]),
    );
    let one_step = wf(json!({}), json!([http("a", json!({}))]));
    let retrying = wf(
        json!({}),
        json!([http(
            "a",
            json!({"retryConfig": {"maxAttempts": 3, "initialDelayMs": 1000, "maxDelayMs": 1000}})
        )]),
    );
    let with_deadline = wf(
        json!({"timeoutMs": 5000}),
        json!([http(
            "a",
            json!({"retryConfig": {"maxAttempts": 5, "initialDelayMs": 4000, "maxDelayMs": 30000}})
        )]),
    );
    let waiting = wf(
        json!({}),
        json!([{"id": "w", "type": "wait", "config": {"durationMs": 15000}}, transform("t")]),
    );
    let parked_with_timeout = wf(
        json!({"timeoutMs": 2000}),
        json!([{"id": "w", "type": "wait", "config": {"durationMs": 15000}}, transform("t")]),
    );
    let mut waiting_state = started(&waiting, &[Waiting, Pending]);
    waiting_state.steps[0].output = json!({"resumeAt": crate::time::rfc3339(T0 + 15000)});
    waiting_state.steps[0].completed_at = None;
    let mut parked_state = started(&parked_with_timeout, &[Waiting, Pending]);
    parked_state.steps[0].output = json!({"resumeAt": crate::time::rfc3339(T0 + 15000)});
    let mut cancel_flagged = started(&three, &[Completed, Pending, Pending]);
    cancel_flagged.cancel_requested = true;
    let mut finished = started(&three, &[Completed, Completed, Completed]);
    finished.status = R::Completed;
    finished.completed_at = Some(T0);
    vec![
        Row {
            rule: "a new run starts: pure steps settle, the first action is on record as running",
            workflow: two.clone(),
            state: fresh(&two),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Completed, Running],
                effect: exec(1, 30_000),
                error_code: None,
            },
        },
        Row {
            rule: "a step that succeeds settles, the rest run in order, the run completes",
            workflow: three.clone(),
            state: started(&three, &[Running, Pending, Pending]),
            event: Event::StepSucceeded {
                idx: 0,
                output: json!({"ok": true}),
            },
            now: T0 + 10,
            expect: Expect {
                status: R::Completed,
                steps: &[Completed, Completed, Completed],
                effect: Effect::Finish {
                    status: R::Completed,
                },
                error_code: None,
            },
        },
        Row {
            rule: "a step whose `if` is false is skipped",
            workflow: wf(
                json!({}),
                json!([{"id": "a", "type": "transform", "if": "{{ input.go }}", "config": {"mapping": {}}}, transform("b")]),
            ),
            state: fresh(&wf(json!({}), json!([transform("a"), transform("b")]))),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Completed,
                steps: &[Skipped, Completed],
                effect: Effect::Finish {
                    status: R::Completed,
                },
                error_code: None,
            },
        },
        Row {
            rule: "a template error fails the step and the run; the rest are skipped",
            workflow: wf(
                json!({}),
                json!([{"id": "a", "type": "transform", "config": {"mapping": {"n": "{{ input.n | times: 2 }}"}}}, transform("b")]),
            ),
            state: {
                let w = wf(json!({}), json!([transform("a"), transform("b")]));
                let mut s = fresh(&w);
                s.input = json!({"n": "abc"});
                s
            },
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Failed,
                steps: &[Failed, Skipped],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("STEP_ERROR"),
            },
        },
        Row {
            rule: "a retryable failure with attempts left parks the run until the backoff is over",
            workflow: retrying.clone(),
            state: started(&retrying, &[Running]),
            event: failed(true, None),
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Retrying],
                effect: Effect::Park { until: T0 + 999 },
                error_code: None,
            },
        },
        Row {
            rule: "a Retry-After longer than the backoff is honoured",
            workflow: three.clone(),
            state: started(&three, &[Running, Pending, Pending]),
            event: failed(true, Some(2000)),
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Retrying, Pending, Pending],
                effect: Effect::Park { until: T0 + 2000 },
                error_code: None,
            },
        },
        Row {
            rule: "Retry-After of a year waits no longer than maxDelayMs",
            workflow: retrying.clone(),
            state: started(&retrying, &[Running]),
            event: failed(true, Some(31_536_000_000)),
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Retrying],
                effect: Effect::Park { until: T0 + 1000 },
                error_code: None,
            },
        },
        Row {
            rule: "a Retry-After near u64::MAX does not overflow",
            workflow: retrying.clone(),
            state: started(&retrying, &[Running]),
            event: failed(true, Some(u64::MAX)),
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Retrying],
                effect: Effect::Park { until: T0 + 1000 },
                error_code: None,
            },
        },
        Row {
            rule: "a retry never waits past the run's deadline",
            workflow: with_deadline.clone(),
            state: started(&with_deadline, &[Running]),
            event: failed(true, None),
            now: T0 + 3000,
            expect: Expect {
                status: R::Running,
                steps: &[Retrying],
                effect: Effect::Park { until: T0 + 5000 },
                error_code: None,
            },
        },
        Row {
            rule: "a run claimed again at its deadline while waiting to retry times out",
            workflow: with_deadline.clone(),
            state: started(&with_deadline, &[Retrying]),
            event: Event::Claimed,
            now: T0 + 5000,
            expect: Expect {
                status: R::TimedOut,
                steps: &[Skipped],
                effect: Effect::Finish {
                    status: R::TimedOut,
                },
                error_code: Some("RUN_TIMEOUT"),
            },
        },
        Row {
            rule: "a due retry executes the step again",
            workflow: retrying.clone(),
            state: started(&retrying, &[Retrying]),
            event: Event::Claimed,
            now: T0 + 1000,
            expect: Expect {
                status: R::Running,
                steps: &[Running],
                effect: exec(0, 30_000),
                error_code: None,
            },
        },
        Row {
            rule: "out of attempts: the step fails, the run fails with STEP_ERROR, the rest are skipped",
            workflow: three.clone(),
            state: {
                let mut s = started(&three, &[Running, Pending, Pending]);
                s.steps[0].attempts = 3;
                s
            },
            event: failed(true, None),
            now: T0,
            expect: Expect {
                status: R::Failed,
                steps: &[Failed, Skipped, Skipped],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("STEP_ERROR"),
            },
        },
        Row {
            rule: "a non-retryable failure fails the run at once",
            workflow: three.clone(),
            state: started(&three, &[Running, Pending, Pending]),
            event: failed(false, None),
            now: T0,
            expect: Expect {
                status: R::Failed,
                steps: &[Failed, Skipped, Skipped],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("STEP_ERROR"),
            },
        },
        Row {
            rule: "errorHandling continue records the failure and goes on",
            workflow: wf(
                json!({}),
                json!([
                    http("a", json!({"errorHandling": "continue"})),
                    transform("b")
                ]),
            ),
            state: started(
                &wf(json!({}), json!([http("a", json!({})), transform("b")])),
                &[Running, Pending],
            ),
            event: failed(false, None),
            now: T0,
            expect: Expect {
                status: R::Completed,
                steps: &[Failed, Completed],
                effect: Effect::Finish {
                    status: R::Completed,
                },
                error_code: None,
            },
        },
        Row {
            rule: "a wait step parks the run until it is due",
            workflow: waiting.clone(),
            state: fresh(&waiting),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Waiting, Pending],
                effect: Effect::Park { until: T0 + 15000 },
                error_code: None,
            },
        },
        Row {
            rule: "a due wait step completes and the run goes on",
            workflow: waiting.clone(),
            state: waiting_state.clone(),
            event: Event::Claimed,
            now: T0 + 15000,
            expect: Expect {
                status: R::Completed,
                steps: &[Completed, Completed],
                effect: Effect::Finish {
                    status: R::Completed,
                },
                error_code: None,
            },
        },
        Row {
            rule: "a wait claimed early parks again until its fixed due time",
            workflow: waiting.clone(),
            state: waiting_state,
            event: Event::Claimed,
            now: T0 + 100,
            expect: Expect {
                status: R::Running,
                steps: &[Waiting, Pending],
                effect: Effect::Park { until: T0 + 15000 },
                error_code: None,
            },
        },
        Row {
            rule: "a run parked in a long wait is due again at its deadline, not later",
            workflow: parked_with_timeout.clone(),
            state: fresh(&parked_with_timeout),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Waiting, Pending],
                effect: Effect::Park { until: T0 + 2000 },
                error_code: None,
            },
        },
        Row {
            rule: "the run timeout fires while parked: timed_out, the waiting step skipped",
            workflow: parked_with_timeout,
            state: parked_state,
            event: Event::Claimed,
            now: T0 + 2000,
            expect: Expect {
                status: R::TimedOut,
                steps: &[Skipped, Skipped],
                effect: Effect::Finish {
                    status: R::TimedOut,
                },
                error_code: Some("RUN_TIMEOUT"),
            },
        },
        Row {
            rule: "a step's own timeoutMs bounds its execution",
            workflow: wf(json!({}), json!([http("a", json!({"timeoutMs": 500}))])),
            state: fresh(&wf(json!({}), json!([http("a", json!({}))]))),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Running],
                effect: exec(0, 500),
                error_code: None,
            },
        },
        Row {
            rule: "the run's deadline bounds a step's execution when it is closer",
            workflow: with_deadline.clone(),
            state: started(&with_deadline, &[Pending]),
            event: Event::Claimed,
            now: T0 + 4000,
            expect: Expect {
                status: R::Running,
                steps: &[Running],
                effect: exec(0, 1000),
                error_code: None,
            },
        },
        Row {
            rule: "a step that fails at the deadline times the run out instead of retrying",
            workflow: with_deadline.clone(),
            state: started(&with_deadline, &[Running]),
            event: failed(true, None),
            now: T0 + 5000,
            expect: Expect {
                status: R::TimedOut,
                steps: &[Failed],
                effect: Effect::Finish {
                    status: R::TimedOut,
                },
                error_code: Some("RUN_TIMEOUT"),
            },
        },
        Row {
            rule: "cancel stops a running run before its next step; the rest are skipped",
            workflow: three.clone(),
            state: started(&three, &[Running, Pending, Pending]),
            event: Event::CancelRequested,
            now: T0,
            expect: Expect {
                status: R::Cancelled,
                steps: &[Skipped, Skipped, Skipped],
                effect: Effect::Finish {
                    status: R::Cancelled,
                },
                error_code: Some("CANCELLED"),
            },
        },
        Row {
            // The store refused the step's result (a cancel was recorded
            // meanwhile), so the worker applies the cancel to the state the
            // store holds, where the step is still running: cancel wins over
            // the result, and no step stays `running` on record.
            rule: "a cancel that arrives while the last step finishes ends the run cancelled",
            workflow: one_step.clone(),
            state: started(&one_step, &[Running]),
            event: Event::CancelRequested,
            now: T0 + 10,
            expect: Expect {
                status: R::Cancelled,
                steps: &[Skipped],
                effect: Effect::Finish {
                    status: R::Cancelled,
                },
                error_code: Some("CANCELLED"),
            },
        },
        Row {
            rule: "a cancel recorded before the claim is honoured at the claim",
            workflow: three.clone(),
            state: cancel_flagged,
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Cancelled,
                steps: &[Completed, Skipped, Skipped],
                effect: Effect::Finish {
                    status: R::Cancelled,
                },
                error_code: Some("CANCELLED"),
            },
        },
        Row {
            rule: "a run resumed after a crash runs the step in flight again, never a settled one",
            workflow: three.clone(),
            state: started(&three, &[Running, Pending, Pending]),
            event: Event::Claimed,
            now: T0 + 50,
            expect: Expect {
                status: R::Running,
                steps: &[Running, Pending, Pending],
                effect: exec(0, 30_000),
                error_code: None,
            },
        },
        Row {
            rule: "a finished run does not change",
            workflow: three.clone(),
            state: finished,
            event: Event::CancelRequested,
            now: T0,
            expect: Expect {
                status: R::Completed,
                steps: &[Completed, Completed, Completed],
                effect: Effect::Finish {
                    status: R::Completed,
                },
                error_code: None,
            },
        },
        Row {
            rule: "a definition that cannot be loaded fails the run",
            workflow: placeholder_workflow("wf_gone"),
            state: fresh(&placeholder_workflow("wf_gone")),
            event: Event::DefinitionUnavailable,
            now: T0,
            expect: Expect {
                status: R::Failed,
                steps: &[],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("INTERNAL"),
            },
        },
        Row {
            rule: "a wait without durationMs or until fails as INVALID_CONFIG",
            workflow: wf(
                json!({}),
                json!([{"id": "w", "type": "wait", "config": {"durationMs": "{{ input.none }}"}}]),
            ),
            state: fresh(&wf(json!({}), json!([transform("w")]))),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Failed,
                steps: &[Failed],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("STEP_ERROR"),
            },
        },
    ]
}

#[test]
fn every_rule_of_the_run_lifecycle() {
    for row in rows() {
        let t = advance(&row.workflow, &row.state, row.event.clone(), row.now, 0.999);
        let steps: Vec<StepStatus> = t.state.steps.iter().map(|s| s.status).collect();
        assert_eq!(
            t.state.status, row.expect.status,
            "{}: run status",
            row.rule
        );
        assert_eq!(steps, row.expect.steps, "{}: step statuses", row.rule);
        assert_eq!(t.effect, row.expect.effect, "{}: effect", row.rule);
        assert_eq!(
            t.state.error.as_ref().map(|e| e.code.as_str()),
            row.expect.error_code,
            "{}: run error",
            row.rule
        );
        // Parked runs say until when; others do not.
        assert_eq!(
            t.state.park_until,
            match t.effect {
                Effect::Park { until } => Some(until),
                _ => None,
            },
            "{}: park_until",
            row.rule
        );
        if t.state.status.is_terminal() {
            assert_eq!(
                t.state.completed_at,
                Some(row.now),
                "{}: completed_at",
                row.rule
            );
        }
    }
}

#[test]
fn the_run_output_is_the_workflow_output_or_the_last_completed_step() {
    let w = wf(json!({}), json!([transform("a"), transform("b")]));
    let t = advance(&w, &fresh(&w), Event::Claimed, T0, 0.5);
    assert_eq!(t.state.output, json!({"from": "b"}));
    let w = wf(
        json!({"output": {"first": "{{ steps.a.output.from }}"}}),
        json!([transform("a"), transform("b")]),
    );
    let t = advance(&w, &fresh(&w), Event::Claimed, T0, 0.5);
    assert_eq!(t.state.output, json!({"first": "a"}));
}

#[test]
fn a_failed_run_names_the_step_and_its_message() {
    let w = wf(
        json!({}),
        json!([http("a", json!({"errorHandling": "fail"}))]),
    );
    let t = advance(
        &w,
        &started(&w, &[StepStatus::Running]),
        failed(true, None),
        T0,
        0.5,
    );
    let e = t.state.error.expect("an error");
    assert_eq!(
        (e.code.as_str(), e.step_id.as_deref(), e.message.as_str()),
        ("STEP_ERROR", Some("a"), "upstream said 503")
    );
    assert_eq!(
        RunError::to_value(&Some(e)),
        json!({"code": "STEP_ERROR", "message": "upstream said 503", "stepId": "a"})
    );
}

#[test]
fn backoff_grows_is_jittered_and_capped() {
    let w = wf(
        json!({}),
        json!([http(
            "b",
            json!({"retryConfig": {"maxAttempts": 20, "initialDelayMs": 1000, "maxDelayMs": 4000, "backoffMultiplier": 3}})
        )]),
    );
    let step = &w.steps[0];
    let at =
        |attempts, jitter, after| match on_step_error(step, attempts, true, after, 0, None, jitter)
        {
            FailureDecision::RetryAt(t) => t,
            other => panic!("{other:?}"),
        };
    assert_eq!(at(1, 0.0, None), 500);
    assert_eq!(at(2, 0.999, None), 2998);
    assert!(at(10, 0.999, None) <= 4000);
    // Retry-After wins when longer than the backoff, up to maxDelayMs.
    assert_eq!(at(1, 0.0, Some(3000)), 3000);
    assert_eq!(at(1, 0.0, Some(u64::MAX)), 4000);
    assert_eq!(at(19, 0.999, None), 3998);
}

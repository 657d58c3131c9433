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
    for row in rows().into_iter().chain(control_rows()) {
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

// ---------------------------------------------------------------- condition and stop

/// A user's own error code for a failed stop (a constant, so the scan for documented
/// `"code": "…"` literals does not take it for one of ours).
const CODE: &str = "NOTHING_TO_DO";

fn cond(id: &str, conditions: Value, then: &[&str], els: &[&str]) -> Value {
    json!({"id": id, "type": "condition",
           "config": {"conditions": conditions, "then": then, "else": els}})
}

fn amount_gt(right: Value) -> Value {
    json!({"left": "{{ input.amount }}", "operator": "gt", "right": right})
}

fn with_input(w: &CompiledWorkflow, input: Value) -> RunState {
    let mut s = fresh(w);
    s.input = input;
    s
}

/// check-amount guards `hi` (then) and `lo` (else); `join` is in neither list.
fn branching(extra_cond: Value) -> CompiledWorkflow {
    let mut c = cond("check-amount", amount_gt(json!("1000")), &["hi"], &["lo"]);
    if let (Some(o), Value::Object(e)) = (c.as_object_mut(), extra_cond) {
        o.extend(e);
    }
    wf(
        json!({}),
        json!([c, transform("hi"), transform("lo"), transform("join")]),
    )
}

fn stop(id: &str, config: Value, extra: Value) -> Value {
    let mut s = json!({"id": id, "type": "stop", "config": config});
    if let (Some(o), Value::Object(e)) = (s.as_object_mut(), extra) {
        o.extend(e);
    }
    s
}

fn done(status: RunStatus, steps: &'static [StepStatus]) -> Expect {
    Expect {
        status,
        steps,
        effect: Effect::Finish { status },
        error_code: None,
    }
}

fn control_rows() -> Vec<Row> {
    use RunStatus as R;
    use StepStatus::*;
    let branching_plain = branching(json!({}));
    let guarded_action = wf(
        json!({}),
        json!([
            cond("check-amount", amount_gt(json!(1000)), &["charge"], &[]),
            http("charge", json!({})),
            transform("after")
        ]),
    );
    // The condition is on record as having taken `else`, although the input now says
    // `then`: a claim after a crash reads the record, it does not evaluate again.
    let mut recorded_else = with_input(&branching_plain, json!({"amount": 5000}));
    recorded_else.status = R::Running;
    recorded_else.started_at = Some(T0);
    recorded_else.steps[0].status = Completed;
    recorded_else.steps[0].attempts = 1;
    recorded_else.steps[0].output = json!({"result": false, "branch": "else"});
    let stops = |config: Value, extra: Value| {
        wf(
            json!({}),
            json!([transform("a"), stop("halt", config, extra), transform("b")]),
        )
    };
    let stop_done = stops(
        json!({"status": "completed", "output": {"x": 1}}),
        json!({}),
    );
    let stop_failed = stops(
        json!({"status": "failed", "error": {"code": CODE, "message": "no invoices"}}),
        json!({}),
    );
    let stop_if = stops(
        json!({"status": "completed"}),
        json!({"if": "{{ input.amount > 10 }}"}),
    );
    let stop_in_branch = wf(
        json!({}),
        json!([
            cond("check-amount", amount_gt(json!(1000)), &["halt"], &[]),
            stop("halt", json!({"status": "completed"}), json!({})),
            transform("rest")
        ]),
    );
    let compound = |c: Value| {
        wf(
            json!({}),
            json!([
                cond("c", c, &["yes"], &["no"]),
                transform("yes"),
                transform("no")
            ]),
        )
    };
    let all_any_not = compound(json!({"all": [
        {"any": [
            {"left": "{{ input.country }}", "operator": "eq", "right": "DE"},
            {"left": "{{ input.country }}", "operator": "eq", "right": "AT"}
        ]},
        {"not": {"left": "{{ input.email }}", "operator": "endsWith", "right": "@test.invalid"}}
    ]}));
    let ops = |op: &str, left: Value, right: Option<Value>| {
        let mut c = json!({"left": left, "operator": op});
        if let Some(r) = right {
            c["right"] = r;
        }
        compound(c)
    };
    let then = done(R::Completed, &[Completed, Completed, Skipped]);
    let els = done(R::Completed, &[Completed, Skipped, Completed]);
    let op_row = |rule: &'static str, w: CompiledWorkflow, input: Value, expect: Expect| Row {
        rule,
        state: with_input(&w, input),
        workflow: w,
        event: Event::Claimed,
        now: T0,
        expect,
    };
    vec![
        op_row(
            "condition: then taken, the else step is skipped, the join runs",
            branching_plain.clone(),
            json!({"amount": 5000}),
            done(R::Completed, &[Completed, Completed, Skipped, Completed]),
        ),
        op_row(
            "condition: else taken, the then step is skipped",
            branching_plain.clone(),
            json!({"amount": 10}),
            done(R::Completed, &[Completed, Skipped, Completed, Completed]),
        ),
        op_row(
            "condition: a numeric string compares as a decimal (\"999.5\" gt \"1000\" is false)",
            branching_plain.clone(),
            json!({"amount": "999.5"}),
            done(R::Completed, &[Completed, Skipped, Completed, Completed]),
        ),
        Row {
            rule: "condition: gt on text fails the step (CONDITION_ERROR) and the run",
            workflow: branching_plain.clone(),
            state: with_input(&branching_plain, json!({"amount": "lots"})),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Failed,
                steps: &[Failed, Skipped, Skipped, Skipped],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("STEP_ERROR"),
            },
        },
        op_row(
            "condition: gt on a missing value fails, never silently false",
            branching_plain.clone(),
            json!({}),
            Expect {
                status: R::Failed,
                steps: &[Failed, Skipped, Skipped, Skipped],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("STEP_ERROR"),
            },
        ),
        op_row(
            "condition: failed with errorHandling continue, both branches are skipped",
            branching(json!({"errorHandling": "continue"})),
            json!({"amount": "lots"}),
            done(R::Completed, &[Failed, Skipped, Skipped, Completed]),
        ),
        op_row(
            "condition: skipped by its own if, both branches are skipped",
            branching(json!({"if": "{{ input.check }}"})),
            json!({"amount": 5000, "check": false}),
            done(R::Completed, &[Skipped, Skipped, Skipped, Completed]),
        ),
        op_row(
            "condition: a guarded step's own if is ANDed with the guard",
            wf(
                json!({}),
                json!([
                    cond("c", amount_gt(json!(1)), &["t"], &[]),
                    {"id": "t", "type": "transform", "if": "{{ input.go }}", "config": {"mapping": 1}}
                ]),
            ),
            json!({"amount": 5, "go": false}),
            done(R::Completed, &[Completed, Skipped]),
        ),
        Row {
            rule: "condition: settled before the guarded action, so it is committed with it",
            workflow: guarded_action.clone(),
            state: with_input(&guarded_action, json!({"amount": 5000})),
            event: Event::Claimed,
            now: T0,
            expect: Expect {
                status: R::Running,
                steps: &[Completed, Running, Pending],
                effect: exec(1, 30_000),
                error_code: None,
            },
        },
        Row {
            rule: "condition: a claim after a crash keeps the recorded branch (never re-evaluated)",
            workflow: branching_plain.clone(),
            state: recorded_else,
            event: Event::Claimed,
            now: T0 + 5,
            expect: done(R::Completed, &[Completed, Skipped, Completed, Completed]),
        },
        op_row(
            "condition: all/any/not (true)",
            all_any_not.clone(),
            json!({"country": "AT", "email": "a@b.com"}),
            then.clone_expect(),
        ),
        op_row(
            "condition: all/any/not (false)",
            all_any_not.clone(),
            json!({"country": "AT", "email": "a@test.invalid"}),
            els.clone_expect(),
        ),
        op_row(
            "condition: eq on a number and a numeric string",
            ops("eq", json!("{{ input.n }}"), Some(json!("10000"))),
            json!({"n": 10000}),
            then.clone_expect(),
        ),
        op_row(
            "condition: ne",
            ops("ne", json!("{{ input.s }}"), Some(json!("x"))),
            json!({"s": "x"}),
            els.clone_expect(),
        ),
        op_row(
            "condition: gte at the boundary",
            ops("gte", json!("{{ input.n }}"), Some(json!(5))),
            json!({"n": 5}),
            then.clone_expect(),
        ),
        op_row(
            "condition: lt",
            ops("lt", json!("{{ input.n }}"), Some(json!("5.01"))),
            json!({"n": 5}),
            then.clone_expect(),
        ),
        op_row(
            "condition: lte",
            ops("lte", json!("{{ input.n }}"), Some(json!(4))),
            json!({"n": 5}),
            els.clone_expect(),
        ),
        op_row(
            "condition: contains on an array",
            ops("contains", json!("{{ input.tags }}"), Some(json!("vip"))),
            json!({"tags": ["new", "vip"]}),
            then.clone_expect(),
        ),
        op_row(
            "condition: startsWith",
            ops("startsWith", json!("{{ input.s }}"), Some(json!("INV-"))),
            json!({"s": "INV-42"}),
            then.clone_expect(),
        ),
        op_row(
            "condition: exists on a missing value",
            ops("exists", json!("{{ input.none }}"), None),
            json!({}),
            els.clone_expect(),
        ),
        op_row(
            "condition: isEmpty on an empty list",
            ops("isEmpty", json!("{{ input.l }}"), None),
            json!({"l": []}),
            then.clone_expect(),
        ),
        op_row(
            "condition: matches a literal regex",
            ops(
                "matches",
                json!("{{ input.s }}"),
                Some(json!("^INV-[0-9]+$")),
            ),
            json!({"s": "INV-42"}),
            then.clone_expect(),
        ),
        op_row(
            "condition: matches with a templated pattern that does not compile fails",
            ops(
                "matches",
                json!("{{ input.s }}"),
                Some(json!("{{ input.p }}")),
            ),
            json!({"s": "x", "p": "("}),
            Expect {
                status: R::Failed,
                steps: &[Failed, Skipped, Skipped],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some("STEP_ERROR"),
            },
        ),
        op_row(
            "stop: completed ends the run with its output, later steps are skipped",
            stop_done.clone(),
            json!({}),
            done(R::Completed, &[Completed, Completed, Skipped]),
        ),
        op_row(
            "stop: failed ends the run with its error",
            stop_failed.clone(),
            json!({}),
            Expect {
                status: R::Failed,
                steps: &[Completed, Completed, Skipped],
                effect: Effect::Finish { status: R::Failed },
                error_code: Some(CODE),
            },
        ),
        op_row(
            "stop: its if false, it is skipped and the run goes on",
            stop_if.clone(),
            json!({"amount": 1}),
            done(R::Completed, &[Completed, Skipped, Completed]),
        ),
        op_row(
            "stop: under a branch not taken, it is skipped",
            stop_in_branch.clone(),
            json!({"amount": 1}),
            done(R::Completed, &[Completed, Skipped, Completed]),
        ),
    ]
}

impl Expect {
    fn clone_expect(&self) -> Expect {
        Expect {
            status: self.status,
            steps: self.steps,
            effect: self.effect.clone(),
            error_code: self.error_code,
        }
    }
}

#[test]
fn a_condition_outputs_its_result_and_branch_and_skipped_steps_say_why() {
    let w = branching(json!({}));
    let t = advance(
        &w,
        &with_input(&w, json!({"amount": 5000})),
        Event::Claimed,
        T0,
        0.5,
    );
    assert_eq!(
        t.state.steps[0].output,
        json!({"result": true, "branch": "then"})
    );
    assert_eq!(
        t.state.steps[2].skip_reason,
        Some(SkipReason::Condition {
            condition: "check-amount".into(),
            branch: Some("then".into())
        })
    );
    assert_eq!(
        t.state.steps[2]
            .skip_reason
            .as_ref()
            .map(SkipReason::to_value),
        Some(json!({"condition": "check-amount", "branch": "then"}))
    );
    assert_eq!(t.state.steps[1].skip_reason, None);
    // A condition that did not run took no branch.
    let w = branching(json!({"if": "{{ false }}"}));
    let t = advance(
        &w,
        &with_input(&w, json!({"amount": 5000})),
        Event::Claimed,
        T0,
        0.5,
    );
    assert_eq!(
        t.state.steps[0]
            .skip_reason
            .as_ref()
            .map(SkipReason::to_value),
        Some(json!({"if": "{{ false }}"}))
    );
    assert_eq!(
        t.state.steps[1]
            .skip_reason
            .as_ref()
            .map(SkipReason::to_value),
        Some(json!({"condition": "check-amount", "branch": null}))
    );
}

#[test]
fn a_condition_error_names_the_step_the_path_and_both_values() {
    let w = branching(json!({}));
    let t = advance(
        &w,
        &with_input(&w, json!({"amount": "lots"})),
        Event::Claimed,
        T0,
        0.5,
    );
    let e = t.state.steps[0].error.clone().expect("step error");
    assert_eq!(e.code, "CONDITION_ERROR");
    assert_eq!(e.path.as_deref(), Some("config.conditions"));
    assert!(
        e.message
            .contains("'gt': cannot order string \"lots\" against string \"1000\""),
        "{}",
        e.message
    );
    assert_eq!(
        t.state.error.expect("run error").step_id.as_deref(),
        Some("check-amount")
    );
}

#[test]
fn a_stop_sets_the_output_or_error_and_names_itself_on_skipped_steps() {
    let w = wf(
        json!({}),
        json!([
            transform("a"),
            stop(
                "halt",
                json!({"status": "completed", "output": {"n": "{{ steps.a.output.from }}"}}),
                json!({})
            ),
            transform("b")
        ]),
    );
    let t = advance(&w, &fresh(&w), Event::Claimed, T0, 0.5);
    assert_eq!(t.state.output, json!({"n": "a"}));
    assert_eq!(
        t.state.steps[2]
            .skip_reason
            .as_ref()
            .map(SkipReason::to_value),
        Some(json!({"stop": "halt"}))
    );
    // Without its own output, the run's output is as if the run ended there.
    let w = wf(
        json!({}),
        json!([
            transform("a"),
            stop("halt", json!({"status": "completed"}), json!({})),
            transform("b")
        ]),
    );
    let t = advance(&w, &fresh(&w), Event::Claimed, T0, 0.5);
    assert_eq!(t.state.output, json!({"from": "a"}));
    let w = wf(
        json!({}),
        json!([stop(
            "halt",
            json!({"status": "failed", "error": {"code": CODE, "message": "nothing for {{ input.who }}"}}),
            json!({})
        )]),
    );
    let t = advance(
        &w,
        &with_input(&w, json!({"who": "ada"})),
        Event::Claimed,
        T0,
        0.5,
    );
    let e = t.state.error.expect("run error");
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (CODE, "nothing for ada")
    );
    assert_eq!(e.step_id.as_deref(), Some("halt"));
    assert_eq!(t.state.output, Value::Null);
}

fn calls(wait: bool) -> CompiledWorkflow {
    wf(
        json!({"timeoutMs": 60000}),
        json!([{"id": "call", "type": "workflow",
                "config": {"workflowId": "wf_child", "input": {"n": "{{ input.n }}"}, "wait": wait}},
               transform("after")]),
    )
}

#[test]
fn a_workflow_step_spawns_its_child_once_and_suspends() {
    let w = calls(true);
    let s = with_input(&w, json!({"n": 3}));
    let t = advance(&w, &s, Event::Claimed, T0, 0.5);
    let Effect::Spawn(sp) = &t.effect else {
        panic!("expected a spawn: {:?}", t.effect)
    };
    assert_eq!(sp.child_run_id, child_run_id("run_1", "call", "0"));
    assert_eq!(sp.workflow_id, "wf_child");
    assert_eq!(sp.input, json!({"n": 3}));
    assert!(sp.wait);
    assert_eq!(sp.depth, 1);
    assert_eq!(
        sp.deadline_at,
        Some(T0 + 60000),
        "the child may not outlive the parent"
    );
    assert_eq!(t.state.steps[0].status, StepStatus::Waiting);
    assert_eq!(t.state.steps[0].output["waitingFor"], "children");
    assert_eq!(
        t.state.park_until,
        Some(T0 + 60000),
        "a waiting parent is due again at its deadline"
    );
    // Claimed again before the child finished (a restart): the same child, not a new one.
    let again = advance(&w, &t.state, Event::Claimed, T0 + 5, 0.5);
    let Effect::Spawn(sp2) = &again.effect else {
        panic!("expected the same spawn: {:?}", again.effect)
    };
    assert_eq!(sp2.child_run_id, sp.child_run_id);
    assert_eq!(again.state.steps[0].attempts, 1);
}

#[test]
fn a_child_finish_settles_the_waiting_step() {
    let w = calls(true);
    let s = with_input(&w, json!({"n": 3}));
    let waiting = advance(&w, &s, Event::Claimed, T0, 0.5).state;
    let mut done = waiting.clone();
    done.steps[0].output["child"] =
        json!({"runId": "run_c", "status": "completed", "output": {"x": 1}});
    let t = advance(&w, &done, Event::Claimed, T0 + 10, 0.5);
    assert_eq!(
        t.effect,
        Effect::Finish {
            status: RunStatus::Completed
        }
    );
    assert_eq!(t.state.steps[0].output, json!({"x": 1}));
    assert_eq!(t.state.steps[1].output, json!({"from": "after"}));

    let mut failed = waiting;
    failed.steps[0].output["child"] = json!({"runId": "run_c", "status": "failed",
        "error": {"code": "HTTP_STATUS", "message": "no"}});
    let t = advance(&w, &failed, Event::Claimed, T0 + 10, 0.5);
    assert_eq!(
        t.effect,
        Effect::Finish {
            status: RunStatus::Failed
        }
    );
    let err = t.state.steps[0].error.as_ref().unwrap();
    assert_eq!(err.code, "CHILD_FAILED");
    assert!(err.message.contains("no"), "{err:?}");
    assert_eq!(t.state.steps[0].output["error"]["code"], "HTTP_STATUS");
    assert_eq!(t.state.steps[1].status, StepStatus::Skipped);
}

#[test]
fn a_parent_still_waiting_for_its_child_at_its_deadline_times_out() {
    let w = calls(true);
    let waiting = advance(
        &w,
        &with_input(&w, json!({"n": 3})),
        Event::Claimed,
        T0,
        0.5,
    )
    .state;
    let t = advance(&w, &waiting, Event::Claimed, T0 + 60000, 0.5);
    assert_eq!(
        t.effect,
        Effect::Finish {
            status: RunStatus::TimedOut
        }
    );
    assert_eq!(t.state.error.as_ref().unwrap().code, "RUN_TIMEOUT");
    assert_eq!(t.state.steps[1].status, StepStatus::Skipped);
    // Without a deadline the wait has no due time: only the child's finish ends it.
    let open = wf(
        json!({}),
        json!([{"id": "call", "type": "workflow", "config": {"workflowId": "wf_child"}}]),
    );
    let t = advance(
        &open,
        &with_input(&open, json!({})),
        Event::Claimed,
        T0,
        0.5,
    );
    assert!(matches!(t.effect, Effect::Spawn(_)), "{:?}", t.effect);
    assert_eq!(t.state.park_until, None);
}

#[test]
fn max_depth_and_wait_false_and_the_parents_deadline() {
    let w = calls(true);
    let mut deep = with_input(&w, json!({}));
    deep.depth = MAX_DEPTH;
    let t = advance(&w, &deep, Event::Claimed, T0, 0.5);
    assert_eq!(
        t.effect,
        Effect::Finish {
            status: RunStatus::Failed
        }
    );
    assert_eq!(t.state.steps[0].error.as_ref().unwrap().code, "MAX_DEPTH");

    let w = calls(false);
    let t = advance(&w, &with_input(&w, json!({})), Event::Claimed, T0, 0.5);
    let Effect::Spawn(sp) = &t.effect else {
        panic!()
    };
    assert!(!sp.wait);
    assert_eq!(t.state.steps[0].status, StepStatus::Running);

    // A child whose parent's deadline is sooner than its own times out then.
    let plain = wf(json!({"timeoutMs": 60000}), json!([transform("a")]));
    let mut child = fresh(&plain);
    child.deadline_at = Some(T0 + 10);
    let t = advance(&plain, &child, Event::Claimed, T0 + 20, 0.5);
    assert_eq!(
        t.effect,
        Effect::Finish {
            status: RunStatus::TimedOut
        }
    );
}

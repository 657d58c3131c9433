//! The run-state limits as rules of `advance`: outputs that cannot be stored fail their
//! step (not retried), template results stop at the budget, and a run recovered too often
//! from a dead holder fails instead of resuming.

use super::*;
use crate::limits::{MAX_JSON_DEPTH, RunLimits};
use crate::workflow::compile;
use serde_json::json;

const T0: i64 = 1_000_000;

fn wf(steps: Value) -> CompiledWorkflow {
    compile(&json!({"name": "T", "steps": steps})).expect("valid test workflow")
}

fn state(w: &CompiledWorkflow, input: Value) -> RunState {
    RunState::new(
        w,
        "run_1".into(),
        1,
        input,
        RunStatus::Pending,
        None,
        false,
        vec![],
    )
}

fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!([v]);
    }
    v
}

fn http_step() -> Value {
    json!({"id": "call", "type": "action", "action": "http.request", "config": {"url": "http://x"}})
}

#[test]
fn a_transform_whose_result_passes_the_budget_fails_its_step_and_the_run() {
    let w = wf(json!([
        {"id": "amp", "type": "transform", "config": {"mapping": {"x": "{{ input.s | replace: 'a', input.r }}"}}}
    ]));
    let input = json!({"s": "a".repeat(2000), "r": "b".repeat(2000)});
    let limits = RunLimits {
        max_value_bytes: 1 << 20,
        ..RunLimits::default()
    };
    let s = state(&w, input).with_limits(limits, 0);
    let t = advance(&w, &s, Event::Claimed, T0, 0.0);
    assert_eq!(t.state.status, RunStatus::Failed);
    let step = &t.state.steps[0];
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.attempts, 1, "not retried");
    let e = step.error.as_ref().expect("step error");
    assert_eq!(e.code, "OUTPUT_TOO_LARGE");
    assert!(
        e.message.contains("step 'amp'") && e.message.contains("1 MiB"),
        "{}",
        e.message
    );
    assert_eq!(
        t.state.error.as_ref().map(|e| e.step_id.as_deref()),
        Some(Some("amp"))
    );
}

#[test]
fn a_transform_nesting_its_input_past_the_depth_limit_fails() {
    let w = wf(json!([
        {"id": "wrap", "type": "transform", "config": {"mapping": {"order": {"customer": "{{ input.c }}"}}}}
    ]));
    // Fine as an input, too deep once wrapped.
    let s = state(&w, json!({"c": nested(MAX_JSON_DEPTH - 1)}));
    let t = advance(&w, &s, Event::Claimed, T0, 0.0);
    let e = t.state.steps[0].error.as_ref().expect("step error");
    assert_eq!(e.code, "OUTPUT_TOO_DEEP");
    assert_eq!(t.state.status, RunStatus::Failed);
    // One level less fits.
    let s = state(&w, json!({"c": nested(MAX_JSON_DEPTH - 2)}));
    let t = advance(&w, &s, Event::Claimed, T0, 0.0);
    assert_eq!(t.state.status, RunStatus::Completed);
}

#[test]
fn an_action_output_too_deep_or_too_large_fails_its_step_without_retry() {
    let w = compile(&json!({"name": "T", "steps": [{
        "id": "call", "type": "action", "action": "http.request", "config": {"url": "http://x"},
        "retryConfig": {"maxAttempts": 5, "initialDelayMs": 1000, "maxDelayMs": 1000}
    }]}))
    .expect("valid");
    let limits = RunLimits {
        max_value_bytes: 2048,
        ..RunLimits::default()
    };
    let s = state(&w, json!({})).with_limits(limits, 0);
    let running = advance(&w, &s, Event::Claimed, T0, 0.0).state;
    for (output, code) in [
        (nested(MAX_JSON_DEPTH + 1), "OUTPUT_TOO_DEEP"),
        (json!({"body": "x".repeat(4096)}), "OUTPUT_TOO_LARGE"),
    ] {
        let t = advance(
            &w,
            &running,
            Event::StepSucceeded { idx: 0, output },
            T0 + 1,
            0.0,
        );
        assert_eq!(t.state.status, RunStatus::Failed, "{code}");
        assert_eq!(t.state.steps[0].status, StepStatus::Failed);
        assert_eq!(
            t.state.steps[0].output,
            Value::Null,
            "nothing of it is kept"
        );
        assert_eq!(
            t.state.steps[0].error.as_ref().map(|e| e.code.as_str()),
            Some(code)
        );
    }
}

#[test]
fn a_run_recovered_too_often_fails_on_the_step_it_was_on() {
    let w = wf(json!([
        {"id": "first", "type": "transform", "config": {"mapping": {"ok": true}}},
        http_step()
    ]));
    let s = state(&w, json!({}));
    let on_call = advance(&w, &s, Event::Claimed, T0, 0.0).state;
    assert_eq!(on_call.steps[1].status, StepStatus::Running);
    // Below the limit the run resumes the step.
    let again = on_call.clone().with_limits(RunLimits::default(), 2);
    let t = advance(&w, &again, Event::Claimed, T0 + 1, 0.0);
    assert!(matches!(t.effect, Effect::Execute { idx: 1, .. }));
    // At the limit it fails, naming the step, and the step is not executed again.
    let poisoned = on_call.clone().with_limits(RunLimits::default(), 3);
    let t = advance(&w, &poisoned, Event::Claimed, T0 + 2, 0.0);
    assert_eq!(
        t.effect,
        Effect::Finish {
            status: RunStatus::Failed
        }
    );
    let e = t.state.error.as_ref().expect("run error");
    assert_eq!(e.code, "RUN_INTERRUPTED");
    assert_eq!(e.step_id.as_deref(), Some("call"));
    assert!(e.message.contains("3 times"), "{}", e.message);
    assert_eq!(t.state.steps[0].status, StepStatus::Completed);
    assert_eq!(t.state.steps[1].status, StepStatus::Failed);
    // 0 turns the protection off.
    let off = on_call.with_limits(
        RunLimits {
            max_recoveries: 0,
            ..RunLimits::default()
        },
        50,
    );
    let t = advance(&w, &off, Event::Claimed, T0 + 3, 0.0);
    assert!(matches!(t.effect, Effect::Execute { idx: 1, .. }));
}

#[test]
fn apply_refuses_a_literal_template_that_would_blow_up() {
    let chain = format!(" | replace: 'a', '{}'", "a".repeat(10_000)).repeat(3);
    let def = json!({"name": "T", "steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"x": format!("{{{{ 'aaaaaaaaaa'{chain} }}}}")}}}
    ]});
    let issues = compile(&def).expect_err("refused at apply");
    assert_eq!(issues.len(), 1);
    assert_eq!(
        issues[0].path,
        vec![
            json!("steps"),
            json!(0),
            json!("config"),
            json!("mapping"),
            json!("x")
        ]
    );
    assert!(issues[0].message.contains("limit"), "{}", issues[0].message);
}

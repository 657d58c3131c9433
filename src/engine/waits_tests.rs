//! The rules of approval and callback waits, as rows: reaching one suspends the
//! run (holding nothing) until the step's deadline; a recorded resolution or
//! callback settles it; the deadline decides as configured; a run's own
//! deadline caps the suspension.

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

fn approval(config: Value) -> CompiledWorkflow {
    wf(
        json!({}),
        json!([
            {"id": "ask", "type": "approval", "config": config},
            {"id": "after", "type": "transform", "if": "{{ steps.ask.output.approved }}",
             "config": {"mapping": {"ok": true}}}
        ]),
    )
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

fn suspended(w: &CompiledWorkflow) -> RunState {
    let t = advance(w, &fresh(w), Event::Claimed, T0, 0.0);
    t.state
}

#[test]
fn reaching_an_approval_suspends_until_its_timeout() {
    let w = approval(json!({"approvers": ["a@x.io", "ops"], "timeoutMs": 5000,
                            "required": "all", "notifyChannels": {"email": true}}));
    let t = advance(&w, &fresh(&w), Event::Claimed, T0, 0.0);
    assert_eq!(t.state.status, RunStatus::Suspended);
    assert_eq!(t.state.park_until, Some(T0 + 5000));
    let Effect::Suspend(sp) = &t.effect else {
        panic!("{:?}", t.effect)
    };
    assert_eq!(sp.waiting_for, WaitingFor::Approval);
    let req = sp.approval.as_ref().expect("the approval is requested");
    assert_eq!(req.approvers, ["a@x.io", "ops"]);
    assert_eq!(req.required, 2);
    assert!(req.email);
    let rec = &t.state.steps[0];
    assert_eq!(rec.status, StepStatus::Waiting);
    assert_eq!(rec.output["waitingFor"], "approval");
    assert_eq!(rec.output["expiresAt"], crate::time::rfc3339(T0 + 5000));
}

#[test]
fn a_claim_before_anything_happened_suspends_again_without_a_new_request() {
    let w = approval(json!({"approvers": ["ops"], "timeoutMs": 5000}));
    let t = advance(&w, &suspended(&w), Event::Claimed, T0 + 100, 0.0);
    let Effect::Suspend(sp) = &t.effect else {
        panic!("{:?}", t.effect)
    };
    assert!(sp.approval.is_none(), "the tokens exist already");
    assert_eq!(sp.until, T0 + 5000, "the deadline does not move");
}

#[test]
fn a_recorded_resolution_settles_the_step() {
    let w = approval(json!({"approvers": ["ops"]}));
    let mut s = suspended(&w);
    let d = json!({"by": "ana", "decision": "approve", "at": "2026-12-08T00:00:00.000Z", "comment": "ok"});
    s.steps[0].output["decisions"] = json!([d]);
    s.steps[0].output["resolution"] = d;
    let t = advance(&w, &s, Event::Claimed, T0 + 100, 0.0);
    assert_eq!(
        t.effect,
        Effect::Finish {
            status: RunStatus::Completed
        }
    );
    let out = &t.state.steps[0].output;
    assert_eq!(out["approved"], true);
    assert_eq!(out["approvedBy"], "ana");
    assert_eq!(out["comment"], "ok");
    assert_eq!(out["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(t.state.steps[1].status, StepStatus::Completed);
}

#[test]
fn a_rejection_is_a_branch_unless_on_reject_fails() {
    let rejected = |config: Value| {
        let w = approval(config);
        let mut s = suspended(&w);
        s.steps[0].output["resolution"] = json!({"by": "bo", "decision": "reject", "at": "x"});
        advance(&w, &s, Event::Claimed, T0 + 100, 0.0)
    };
    let t = rejected(json!({"approvers": ["ops"]}));
    assert_eq!(t.state.status, RunStatus::Completed);
    assert_eq!(t.state.steps[0].output["approved"], false);
    assert_eq!(t.state.steps[1].status, StepStatus::Skipped);
    let t = rejected(json!({"approvers": ["ops"], "onReject": "fail"}));
    assert_eq!(t.state.status, RunStatus::Failed);
    let e = t.state.steps[0].error.as_ref().unwrap();
    assert_eq!(e.code, "APPROVAL_REJECTED");
}

#[test]
fn the_deadline_decides_as_on_timeout_says() {
    for (on, status, approved) in [
        ("reject", RunStatus::Completed, Some(false)),
        ("approve", RunStatus::Completed, Some(true)),
        ("fail", RunStatus::Failed, None),
    ] {
        let w = approval(json!({"approvers": ["ops"], "timeoutMs": 2000, "onTimeout": on}));
        let s = suspended(&w);
        let early = advance(&w, &s, Event::Claimed, T0 + 1999, 0.0);
        assert!(matches!(early.effect, Effect::Suspend(_)), "{on}: not yet");
        let t = advance(&w, &s, Event::Claimed, T0 + 2000, 0.0);
        assert_eq!(t.state.status, status, "{on}");
        let rec = &t.state.steps[0];
        assert_eq!(rec.output["decision"], "timeout", "{on}");
        match approved {
            Some(a) => assert_eq!(rec.output["approved"], a, "{on}"),
            None => assert_eq!(rec.error.as_ref().unwrap().code, "APPROVAL_TIMEOUT"),
        }
    }
}

#[test]
fn a_suspension_never_outlasts_the_run() {
    let w = wf(
        json!({"timeoutMs": 3000}),
        json!([{"id": "ask", "type": "approval",
                "config": {"approvers": ["ops"], "timeoutMs": 2500, "onReject": "fail"}}]),
    );
    let mut s = fresh(&w);
    s.started_at = Some(T0 - 1000);
    let t = advance(&w, &s, Event::Claimed, T0, 0.0);
    assert_eq!(
        t.state.park_until,
        Some(T0 + 2000),
        "the run's deadline is first"
    );
    let t = advance(&w, &t.state, Event::Claimed, T0 + 2000, 0.0);
    assert_eq!(t.state.status, RunStatus::TimedOut);
}

#[test]
fn a_callback_wait_suspends_and_settles_from_the_callback_or_its_deadline() {
    let w = |on: &str| {
        wf(
            json!({}),
            json!([{"id": "cb", "type": "wait",
                    "config": {"callback": {"timeoutMs": 1000, "onTimeout": on}}}]),
        )
    };
    let fail = w("fail");
    let t = advance(&fail, &fresh(&fail), Event::Claimed, T0, 0.0);
    let Effect::Suspend(sp) = &t.effect else {
        panic!("{:?}", t.effect)
    };
    assert_eq!(sp.waiting_for, WaitingFor::Callback);
    assert_eq!(t.state.status, RunStatus::Suspended);
    let mut got = t.state.clone();
    got.steps[0].output["callback"] =
        json!({"body": {"a": 1}, "headers": {}, "receivedAt": "2026-12-08T00:00:00.000Z"});
    let done = advance(&fail, &got, Event::Claimed, T0 + 10, 0.0);
    assert_eq!(done.state.status, RunStatus::Completed);
    assert_eq!(done.state.steps[0].output["received"], true);
    assert_eq!(done.state.steps[0].output["body"], json!({"a": 1}));
    let late = advance(&fail, &t.state, Event::Claimed, T0 + 1000, 0.0);
    assert_eq!(late.state.status, RunStatus::Failed);
    assert_eq!(
        late.state.steps[0].error.as_ref().unwrap().code,
        "CALLBACK_TIMEOUT"
    );
    let cont = w("continue");
    let t = advance(&cont, &fresh(&cont), Event::Claimed, T0, 0.0);
    let late = advance(&cont, &t.state, Event::Claimed, T0 + 1000, 0.0);
    assert_eq!(late.state.status, RunStatus::Completed);
    assert_eq!(late.state.steps[0].output, json!({"received": false}));
}

#[test]
fn callback_urls_are_visible_to_earlier_steps() {
    let w = wf(
        json!({}),
        json!([
            {"id": "hand", "type": "transform", "config": {"mapping": {"u": "{{ callbacks.cb.url }}"}}},
            {"id": "cb", "type": "wait", "config": {"callback": {}}}
        ]),
    );
    let mut s = fresh(&w);
    s.callbacks = json!({"cb": {"url": "https://x.test/callbacks/t"}});
    let t = advance(&w, &s, Event::Claimed, T0, 0.0);
    assert_eq!(t.state.steps[0].output["u"], "https://x.test/callbacks/t");
}

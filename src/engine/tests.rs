//! Table-driven tests of the run state machine: no runtime, no I/O.

use super::*;
use crate::workflow::{CompiledWorkflow, ErrorHandling, compile};
use serde_json::json;

fn wf(steps: serde_json::Value) -> CompiledWorkflow {
    compile(&json!({"name": "T", "steps": steps})).expect("valid test workflow")
}

fn rec(idx: usize, id: &str, status: StepStatus, output: Value) -> Option<StepRecord> {
    Some(StepRecord {
        idx,
        step_id: id.into(),
        status,
        output,
        error: json!({"code": "X", "message": "boom"}),
        warnings: vec![],
        attempts: 1,
        started_at: Some(1),
        completed_at: Some(2),
    })
}

fn three(second_handling: &str) -> CompiledWorkflow {
    wf(json!([
        {"id": "a", "type": "transform", "config": {"mapping": {"x": 1}}},
        {"id": "b", "type": "action", "action": "http.request", "errorHandling": second_handling, "config": {"url": "http://x"}},
        {"id": "c", "type": "transform", "config": {"mapping": {"y": 2}}}
    ]))
}

#[test]
fn next_step_decisions() {
    use StepStatus::*;
    let w = three("fail");
    let cases: Vec<(Vec<Option<StepRecord>>, Next)> = vec![
        (vec![None, None, None], Next::Step(0)),
        (
            vec![rec(0, "a", Completed, json!(1)), None, None],
            Next::Step(1),
        ),
        (
            vec![
                rec(0, "a", Completed, json!(1)),
                rec(1, "b", Running, json!(null)),
                None,
            ],
            Next::Step(1),
        ),
        (
            vec![
                rec(0, "a", Completed, json!(1)),
                rec(1, "b", Retrying, json!(null)),
                None,
            ],
            Next::Step(1),
        ),
        (
            vec![
                rec(0, "a", Completed, json!(1)),
                rec(1, "b", Waiting, json!(null)),
                None,
            ],
            Next::Step(1),
        ),
        (
            vec![
                rec(0, "a", Completed, json!(1)),
                rec(1, "b", Failed, json!(null)),
                None,
            ],
            Next::Fail(1),
        ),
        (
            vec![
                rec(0, "a", Skipped, json!(null)),
                rec(1, "b", Completed, json!(1)),
                None,
            ],
            Next::Step(2),
        ),
        (
            vec![
                rec(0, "a", Completed, json!(1)),
                rec(1, "b", Completed, json!(1)),
                rec(2, "c", Completed, json!(1)),
            ],
            Next::Finish,
        ),
    ];
    for (records, expected) in cases {
        assert_eq!(next(&w, &records), expected, "{records:?}");
    }
    // With `continue`, a failed step does not fail the run.
    let w = three("continue");
    let records = vec![
        rec(0, "a", Completed, json!(1)),
        rec(1, "b", Failed, json!(null)),
        None,
    ];
    assert_eq!(next(&w, &records), Next::Step(2));
}

#[test]
fn failure_decisions() {
    let w = three("retry");
    let step = &w.steps[1];
    assert_eq!(step.error_handling, ErrorHandling::Retry);
    let now = 1_000_000;
    // Retryable, attempts left: backoff 1000 ms × 2^(n-1), jittered into its upper half.
    match on_step_error(step, 1, true, None, now, 0.0) {
        FailureDecision::RetryAt(t) => assert_eq!(t - now, 500),
        other => panic!("{other:?}"),
    }
    match on_step_error(step, 2, true, None, now, 0.999) {
        FailureDecision::RetryAt(t) => assert!((1990..=2000).contains(&(t - now)), "{}", t - now),
        other => panic!("{other:?}"),
    }
    // Retry-After wins when longer.
    assert_eq!(
        on_step_error(step, 1, true, Some(5000), now, 0.5),
        FailureDecision::RetryAt(now + 5000)
    );
    // Out of attempts, or not retryable: the run fails.
    assert_eq!(
        on_step_error(step, 3, true, None, now, 0.5),
        FailureDecision::FailRun
    );
    assert_eq!(
        on_step_error(step, 1, false, None, now, 0.5),
        FailureDecision::FailRun
    );
    // `fail` never retries; `continue` retries transient errors, then goes on.
    let w = three("fail");
    assert_eq!(
        on_step_error(&w.steps[1], 1, true, None, now, 0.5),
        FailureDecision::FailRun
    );
    let w = three("continue");
    assert!(matches!(
        on_step_error(&w.steps[1], 1, true, None, now, 0.5),
        FailureDecision::RetryAt(_)
    ));
    assert_eq!(
        on_step_error(&w.steps[1], 3, true, None, now, 0.5),
        FailureDecision::Continue
    );
    assert_eq!(
        on_step_error(&w.steps[1], 1, false, None, now, 0.5),
        FailureDecision::Continue
    );
}

#[test]
fn backoff_is_capped_by_max_delay() {
    let w = wf(
        json!([{"id": "b", "type": "action", "action": "http.request", "config": {"url": "http://x"},
        "retryConfig": {"maxAttempts": 20, "initialDelayMs": 1000, "maxDelayMs": 4000, "backoffMultiplier": 3}}]),
    );
    match on_step_error(&w.steps[0], 10, true, None, 0, 0.999) {
        FailureDecision::RetryAt(t) => assert!(t <= 4000, "{t}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn prepare_renders_skips_and_reports_template_errors() {
    let w = wf(json!([
        {"id": "a", "type": "transform", "if": "{{ input.go }}", "config": {"mapping": {"n": "{{ input.n | times: 2 }}"}}}
    ]));
    let facts = RunFacts {
        run_id: "run_1",
        workflow_id: "wf_t",
        workflow_name: "T",
        workflow_version: 1,
        started_at: "2026-01-01T00:00:00.000Z",
        input: &Value::Null,
    };
    let scope = Scope::new(&facts, &[]);
    let vars = json!({});
    let render = |input: Value| {
        let ctx = scope.context(&input, &vars, "2026-01-01T00:00:00.000Z");
        prepare(&w.steps[0], &ctx)
    };
    assert_eq!(
        render(json!({"go": false, "n": 1})),
        Prepared::Skip { warnings: vec![] }
    );
    match render(json!({"go": true, "n": 21})) {
        Prepared::Execute { config, .. } => assert_eq!(transform_output(&config), json!({"n": 42})),
        other => panic!("{other:?}"),
    }
    match render(json!({"go": true, "n": "abc"})) {
        Prepared::TemplateFailed { error } => {
            assert_eq!(error["code"], "TEMPLATE_ERROR");
            assert_eq!(error["path"], "config.mapping.n");
            assert!(error["message"].as_str().unwrap().contains("times"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_output_is_the_workflow_output_or_the_last_completed_step() {
    use StepStatus::*;
    let w = three("fail");
    let records = vec![
        rec(0, "a", Completed, json!({"x": 1})),
        rec(1, "b", Completed, json!({"y": 2})),
        rec(2, "c", Skipped, json!(null)),
    ];
    let facts = RunFacts {
        run_id: "r",
        workflow_id: "w",
        workflow_name: "T",
        workflow_version: 1,
        started_at: "",
        input: &Value::Null,
    };
    let scope = Scope::new(
        &facts,
        &records.iter().flatten().cloned().collect::<Vec<_>>(),
    );
    let ctx = scope.context(&Value::Null, &Value::Null, "");
    assert_eq!(run_output(&w, &records, &ctx).unwrap().0, json!({"y": 2}));

    let with_output = compile(
        &json!({"name": "T", "output": {"a": "{{ steps.a.output.x }}"},
        "steps": [{"id": "a", "type": "transform", "config": {"mapping": {"x": 1}}}]}),
    )
    .unwrap();
    let records = vec![rec(0, "a", Completed, json!({"x": 7}))];
    let scope = Scope::new(
        &facts,
        &records.iter().flatten().cloned().collect::<Vec<_>>(),
    );
    let ctx = scope.context(&Value::Null, &Value::Null, "");
    assert_eq!(
        run_output(&with_output, &records, &ctx).unwrap().0,
        json!({"a": 7})
    );
}

#[test]
fn step_failure_names_the_step() {
    let r = rec(1, "b", StepStatus::Failed, json!(null)).unwrap();
    assert_eq!(
        step_failure(&r),
        json!({"code": "STEP_ERROR", "message": "boom", "stepId": "b"})
    );
}

use super::*;

fn change(was_started: bool, status: RunStatus, started: bool) -> RunChange {
    RunChange {
        was_started,
        was_finished: false,
        status,
        started,
    }
}

#[test]
fn a_run_that_starts_gets_started_once() {
    use EventType::*;
    assert_eq!(
        run_events(change(false, RunStatus::Running, true)),
        [RunStarted]
    );
    assert_eq!(run_events(change(true, RunStatus::Running, true)), []);
    assert_eq!(
        run_events(change(true, RunStatus::Completed, true)),
        [RunCompleted]
    );
    // Started and finished in one write: both, started first.
    assert_eq!(
        run_events(change(false, RunStatus::Failed, true)),
        [RunStarted, RunFailed]
    );
    assert_eq!(
        run_events(change(true, RunStatus::TimedOut, true)),
        [RunTimedOut]
    );
    // Cancelled while queued: it never started.
    assert_eq!(
        run_events(change(false, RunStatus::Cancelled, false)),
        [RunCancelled]
    );
    // A parked write of a pending run changes nothing worth an event.
    assert_eq!(run_events(change(false, RunStatus::Pending, false)), []);
    let finished = RunChange {
        was_finished: true,
        ..change(true, RunStatus::Cancelled, true)
    };
    assert_eq!(run_events(finished), []);
    assert_eq!(
        commit_events(RunStatus::Completed, true),
        (vec![RunStarted, RunCompleted], vec![RunCompleted])
    );
}

#[test]
fn filters_by_type_and_workflow() {
    let all = Filter::default();
    assert!(all.wants("run.failed", Some("wf_a")));
    let f = Filter {
        events: Some(vec!["run.failed".into(), "endpoint.disabled".into()]),
        workflow_ids: Some(vec!["wf_a".into()]),
    };
    assert!(f.wants("run.failed", Some("wf_a")));
    assert!(!f.wants("run.completed", Some("wf_a")));
    assert!(!f.wants("run.failed", Some("wf_b")));
    // System events belong to no workflow: a workflow filter keeps them.
    assert!(f.wants("endpoint.disabled", None));
}

#[test]
fn retries_follow_the_schedule_then_fail() {
    let p = Policy::default();
    assert_eq!(after_attempt(&p, 1, true, 0, Some(5)).0, Next::Delivered);
    assert_eq!(
        after_attempt(&p, 1, true, 0, Some(5)).1,
        EndpointNext::Healthy
    );
    assert_eq!(
        after_attempt(&p, 1, false, 1_000, None),
        (Next::RetryAt(6_000), EndpointNext::FailingSince(1_000))
    );
    assert_eq!(
        after_attempt(&p, 2, false, 0, Some(0)).0,
        Next::RetryAt(300_000)
    );
    assert_eq!(
        after_attempt(&p, 7, false, 0, Some(0)).0,
        Next::RetryAt(36_000_000)
    );
    assert_eq!(after_attempt(&p, 8, false, 0, Some(0)).0, Next::Failed);
    let day = 86_400_000;
    assert_eq!(
        after_attempt(&p, 3, false, 5 * day, Some(0)).1,
        EndpointNext::Disable
    );
    assert_eq!(
        after_attempt(&p, 3, false, 5 * day - 1, Some(0)).1,
        EndpointNext::FailingSince(0)
    );
}

#[test]
fn only_2xx_delivers() {
    assert!(delivered(Some(200)) && delivered(Some(204)));
    assert!(!delivered(Some(302)) && !delivered(Some(500)) && !delivered(None));
}

#[test]
fn own_webhooks_path_is_a_loop() {
    let own = vec!["127.0.0.1:8080".to_string()];
    let u = |s: &str| url::Url::parse(s).unwrap();
    assert!(loops_back(
        &u("http://127.0.0.1:8080/webhooks/custom/x"),
        &own
    ));
    assert!(loops_back(
        &u("http://localhost:8080/webhooks/stripe"),
        &own
    ));
    assert!(!loops_back(
        &u("http://127.0.0.1:8081/webhooks/custom/x"),
        &own
    ));
    assert!(!loops_back(&u("http://127.0.0.1:8080/hooks"), &own));
    assert!(!loops_back(&u("https://example.com/webhooks/x"), &own));
    let public = vec!["flows.example.com:80".to_string()];
    assert!(loops_back(
        &u("http://FLOWS.example.com/webhooks/x"),
        &public
    ));
}

#[test]
fn durations() {
    assert_eq!(parse_duration_ms("5d"), Ok(5 * 86_400_000));
    assert_eq!(parse_duration_ms("1500ms"), Ok(1500));
    assert_eq!(parse_duration_ms("2s"), Ok(2000));
    assert!(parse_duration_ms("5").is_err());
    assert!(parse_duration_ms("0s").is_err());
    assert!(parse_duration_ms("5w").is_err());
}

#[test]
fn run_data_freezes_the_event_state() {
    let view = json!({"id": "run_1", "status": "completed", "steps": [], "output": {"x": 2}});
    let snap = snapshot(
        RunStatus::Running,
        Some(1_000),
        None,
        &Value::Null,
        &Value::Null,
    );
    let d = run_data(view, &snap);
    assert_eq!(d["status"], "running");
    assert_eq!(d["output"], Value::Null);
    assert!(d.get("steps").is_none());
    assert_eq!(d["id"], "run_1");
}

//! Apply-time rules of `condition` and `stop`, and the definedness analysis: each test
//! compiles a small definition and reads the problems (or warnings) with their paths.

use super::compile;
use serde_json::{Value, json};

fn def(steps: Value) -> Value {
    json!({"name": "T", "steps": steps})
}

fn t(id: &str, mapping: Value) -> Value {
    json!({"id": id, "type": "transform", "config": {"mapping": mapping}})
}

fn check_amount(then: Value, els: Value) -> Value {
    json!({"id": "check-amount", "type": "condition", "config": {
        "conditions": {"left": "{{ input.amount }}", "operator": "gt", "right": "10000"},
        "then": then, "else": els}})
}

/// Problems as `dotted.path: message`.
fn problems(d: Value) -> Vec<String> {
    match compile(&d) {
        Ok(_) => vec![],
        Err(issues) => issues
            .into_iter()
            .map(|i| {
                let d = crate::api::ErrorDetail {
                    path: i.path,
                    message: i.message,
                };
                format!("{}: {}", d.dotted_path(), d.message)
            })
            .collect(),
    }
}

fn warnings(d: Value) -> Vec<String> {
    let wf = compile(&d).expect("valid definition");
    wf.warnings
        .into_iter()
        .map(|i| {
            let d = crate::api::ErrorDetail {
                path: i.path,
                message: i.message,
            };
            format!("{}: {}", d.dotted_path(), d.message)
        })
        .collect()
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|p| p.contains(needle))
}

#[test]
fn a_valid_condition_guards_its_targets() {
    let wf = compile(&def(json!([
        check_amount(json!(["hi"]), json!(["lo"])),
        t("hi", json!(1)),
        t("lo", json!(2)),
        t("join", json!(3))
    ])))
    .expect("valid");
    assert_eq!(wf.steps[0].kind.type_name(), "condition");
    assert_eq!(wf.steps[1].guards[0].condition_id, "check-amount");
    assert_eq!(wf.steps[1].guards[0].branch.as_str(), "then");
    assert_eq!(wf.steps[2].guards[0].branch.as_str(), "else");
    assert!(wf.steps[3].guards.is_empty());
    assert!(wf.warnings.is_empty(), "{:?}", wf.warnings);
}

#[test]
fn then_else_must_name_later_steps_without_overlap() {
    let p = problems(def(json!([
        t("early", json!(0)),
        check_amount(
            json!(["early", "nope", "hi", "hi"]),
            json!(["hi", "check-amount", 5])
        ),
        t("hi", json!(1))
    ])));
    assert!(
        has(
            &p,
            "steps[1].config.then[0]: 'early' comes before this condition"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "steps[1].config.then[1]: unknown step 'nope'"),
        "{p:?}"
    );
    assert!(
        has(&p, "steps[1].config.then[3]: 'hi' is listed twice"),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "steps[1].config.else[0]: 'hi' is listed in both then and else"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "steps[1].config.else[1]: a condition cannot guard itself"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "steps[1].config.else[2]: must be a step id"),
        "{p:?}"
    );
}

#[test]
fn an_unknown_operator_lists_the_twelve() {
    let p = problems(def(json!([{"id": "c", "type": "condition", "config": {
        "conditions": {"left": "{{ input.a }}", "operator": "greaterThan", "right": 1}}}])));
    assert_eq!(
        p,
        vec![
            "steps[0].config.conditions.operator: unknown operator 'greaterThan'; the operators are eq, ne, gt, gte, lt, lte, contains, startsWith, endsWith, exists, isEmpty, matches"
        ]
    );
}

#[test]
fn right_is_required_except_for_exists_and_is_empty() {
    let p = problems(def(json!([{"id": "c", "type": "condition", "config": {
    "conditions": {"all": [
        {"left": "{{ input.a }}", "operator": "eq"},
        {"left": "{{ input.a }}", "operator": "exists", "right": 1},
        {"operator": "isEmpty"}
    ]}}}])));
    assert!(
        has(
            &p,
            "steps[0].config.conditions.all[0].right: required for 'eq'"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "steps[0].config.conditions.all[1].right: 'exists' looks at `left` only"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "steps[0].config.conditions.all[2].left: required"),
        "{p:?}"
    );
}

#[test]
fn a_literal_regex_is_compiled_at_apply_time() {
    let p = problems(def(json!([{"id": "c", "type": "condition", "config": {
        "conditions": {"left": "{{ input.a }}", "operator": "matches", "right": "(unclosed"}}}])));
    assert!(
        has(
            &p,
            "steps[0].config.conditions.right: invalid regular expression"
        ),
        "{p:?}"
    );
    // A templated pattern is compiled when the step runs.
    assert!(problems(def(json!([{"id": "c", "type": "condition", "config": {
        "conditions": {"left": "{{ input.a }}", "operator": "matches", "right": "{{ input.p }}"}}}]))).is_empty());
}

#[test]
fn compound_conditions_nest_at_most_four_deep_and_have_one_key() {
    let leaf = json!({"left": "{{ input.a }}", "operator": "exists"});
    let deep = json!({"not": {"not": {"not": {"not": {"not": leaf}}}}});
    let p = problems(def(
        json!([{"id": "c", "type": "condition", "config": {"conditions": deep}}]),
    ));
    assert!(has(&p, "nest at most 4 deep"), "{p:?}");
    let ok = json!({"not": {"not": {"not": {"not": leaf}}}});
    assert!(
        problems(def(
            json!([{"id": "c", "type": "condition", "config": {"conditions": ok}}])
        ))
        .is_empty()
    );
    let p = problems(def(json!([{"id": "c", "type": "condition", "config": {
        "conditions": {"all": [], "any": [leaf]}}}])));
    assert!(has(&p, "exactly one key"), "{p:?}");
    let p = problems(def(json!([{"id": "c", "type": "condition", "config": {
        "conditions": {"all": []}}}])));
    assert!(
        has(
            &p,
            "steps[0].config.conditions.all: must be a non-empty array"
        ),
        "{p:?}"
    );
    let p = problems(def(
        json!([{"id": "c", "type": "condition", "config": {"then": []}}]),
    ));
    assert!(has(&p, "a condition needs `conditions`"), "{p:?}");
    let p = problems(def(json!([{"id": "c", "type": "condition", "config": {
        "conditions": leaf, "otherwise": []}}])));
    assert!(has(&p, "steps[0].config.otherwise: unknown field"), "{p:?}");
}

#[test]
fn a_stop_needs_a_status_and_a_failed_one_an_error() {
    let stop = |config: Value| def(json!([{"id": "s", "type": "stop", "config": config}]));
    assert!(problems(stop(json!({"status": "completed", "output": {"a": 1}}))).is_empty());
    assert!(
        problems(stop(
            json!({"status": "failed", "error": {"code": "X", "message": "y"}})
        ))
        .is_empty()
    );
    assert!(has(
        &problems(stop(json!({}))),
        "steps[0].config.status: required: completed or failed"
    ));
    assert!(has(
        &problems(stop(json!({"status": "failed"}))),
        "steps[0].config.error: required for a failed stop"
    ));
    assert!(has(
        &problems(stop(json!({"status": "failed", "error": {"code": ""}}))),
        "steps[0].config.error.message: required"
    ));
    assert!(has(
        &problems(stop(
            json!({"status": "completed", "error": {"code": "X", "message": "y"}})
        )),
        "only a failed stop has an error"
    ));
    assert!(has(
        &problems(stop(json!({"status": "completed", "breakLoop": true}))),
        "steps[0].config.breakLoop: only a stop inside a loop's body can break the loop"
    ));
}

#[test]
fn a_reference_a_condition_may_skip_is_a_warning_naming_condition_and_branch() {
    let w = warnings(def(json!([
        check_amount(json!(["high-value"]), json!([])),
        t("high-value", json!({"total": 1})),
        t("x", json!(1)),
        t(
            "invoice",
            json!({"amount": "{{ steps.high-value.output.total }}"})
        )
    ])));
    assert_eq!(
        w,
        vec![
            "steps[3].config.mapping.amount: 'steps.high-value.output.total' is unset when 'check-amount' takes 'else' (use `| default:` if that is expected)"
        ]
    );
}

#[test]
fn references_under_the_same_branch_through_default_or_to_status_are_fine() {
    let w = warnings(def(json!([
        check_amount(json!(["high-value", "use-it"]), json!(["low"])),
        t("high-value", json!({"total": 1})),
        t("use-it", json!("{{ steps.high-value.output.total }}")),
        t("low", json!(1)),
        t("defaulted", json!("{{ steps.high-value.output.total | default: 0 }}")),
        {"id": "status", "type": "transform", "if": "{{ steps.high-value.status == 'completed' }}",
         "config": {"mapping": 1}},
    ])));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn nested_branches_inherit_guards_and_the_output_is_checked() {
    let w = warnings(json!({"name": "T", "steps": [
        check_amount(json!(["inner"]), json!([])),
        {"id": "inner", "type": "condition", "config": {
            "conditions": {"left": "{{ input.vip }}", "operator": "eq", "right": true},
            "then": ["deep"]}},
        t("deep", json!(1)),
        {"id": "reader", "type": "transform", "if": "{{ steps.deep.output }}", "config": {"mapping": 1}}
    ], "output": {"d": "{{ steps.deep.output }}"}}));
    assert!(
        has(&w, "steps[3].if: 'steps.deep.output' is unset when"),
        "{w:?}"
    );
    assert!(
        has(&w, "output.d: 'steps.deep.output' is unset when"),
        "{w:?}"
    );
}

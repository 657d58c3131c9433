//! Apply-time rules of `loop` and `parallel`: bodies are private, loop variables exist
//! only inside their loop and shadow nothing, limits on nesting, steps and branches,
//! ids unique across bodies; every problem is named with its path into the body.

use super::compile;
use serde_json::{Value, json};

fn problems(steps: Value) -> Vec<String> {
    match compile(&json!({"name": "T", "steps": steps})) {
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

fn has(problems: &[String], want: &str) -> bool {
    problems.iter().any(|p| p.contains(want))
}

fn t(id: &str, mapping: Value) -> Value {
    json!({"id": id, "type": "transform", "config": {"mapping": mapping}})
}

fn looped(id: &str, extra: Value, body: Value) -> Value {
    let mut config = json!({"collection": "{{ input.list }}", "steps": body});
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    json!({"id": id, "type": "loop", "config": config})
}

#[test]
fn a_valid_loop_and_parallel_compile_with_their_bodies() {
    let wf = compile(&json!({"name": "T", "steps": [
        t("fetch", json!({"n": 1})),
        looped("each", json!({"itemVariable": "inv", "maxConcurrency": 5,
                              "output": "{{ steps.charge.output.id }}"}),
               json!([t("charge", json!({"id": "{{ inv.id }}", "i": "{{ index }}", "n": "{{ steps.fetch.output.n }}"}))])),
        {"id": "both", "type": "parallel", "config": {"branches": {
            "a": [t("a1", json!({"x": "{{ steps.each.output.count }}"}))],
            "b": [t("b1", json!(1)), t("b2", json!("{{ steps.b1.output }}"))]}}},
        t("after", json!({"a": "{{ steps.both.output.a }}"}))
    ]}))
    .expect("valid");
    let body = wf.body("each", "3").expect("the loop's body");
    assert_eq!(body.steps[0].id, "charge");
    assert_eq!(body.id, wf.id, "a body runs as its workflow");
    assert!(body.output.is_some());
    assert_eq!(wf.body("both", "b").unwrap().steps.len(), 2);
    assert!(wf.body("both", "c").is_none());
}

#[test]
fn inner_steps_are_private_and_the_message_names_the_block() {
    let p = problems(json!([
        looped("each", json!({}), json!([t("charge", json!(1))])),
        t("after", json!({"x": "{{ steps.charge.output }}"}))
    ]));
    assert!(
        has(
            &p,
            "steps[1].config.mapping.x: step 'charge' is inside the body of 'each' and private to it; after the block use steps.each.output"
        ),
        "{p:?}"
    );
    // A branch does not see another branch's steps either.
    let p = problems(
        json!([{"id": "both", "type": "parallel", "config": {"branches": {
        "a": [t("a1", json!(1))],
        "b": [t("b1", json!("{{ steps.a1.output }}"))]}}}]),
    );
    assert!(
        has(
            &p,
            "steps[0].config.branches.b[0].config.mapping: step 'a1' is inside the body of 'both'"
        ),
        "{p:?}"
    );
}

#[test]
fn loop_variables_exist_only_inside_and_shadow_nothing() {
    let p = problems(json!([
        looped("each", json!({}), json!([t("in", json!("{{ item }}"))])),
        t("out", json!("{{ item.id }}"))
    ]));
    assert!(
        has(&p, "steps[1].config.mapping: unknown root 'item'"),
        "{p:?}"
    );
    for (name, field) in [
        ("input", "itemVariable"),
        ("steps", "indexVariable"),
        ("now", "itemVariable"),
    ] {
        let p = problems(json!([looped(
            "each",
            json!({field: name}),
            json!([t("x", json!(1))])
        )]));
        assert!(
            has(
                &p,
                &format!("steps[0].config.{field}: '{name}' would shadow the template root")
            ),
            "{p:?}"
        );
    }
    let p = problems(json!([looped(
        "outer",
        json!({"itemVariable": "inv"}),
        json!([looped(
            "inner",
            json!({"itemVariable": "inv", "collection": "{{ inv.lines }}"}),
            json!([t("x", json!(1))])
        )])
    )]));
    assert!(
        has(
            &p,
            "steps[0].config.steps[0].config.itemVariable: 'inv' would shadow the variable of an enclosing loop"
        ),
        "{p:?}"
    );
    let p = problems(json!([looped(
        "each",
        json!({"itemVariable": "a", "indexVariable": "a"}),
        json!([t("x", json!(1))])
    )]));
    assert!(has(&p, "is the item variable too"), "{p:?}");
}

#[test]
fn limits_on_iterations_concurrency_nesting_steps_and_branches() {
    let p = problems(json!([looped(
        "each",
        json!({"maxIterations": 10001, "maxConcurrency": 51, "onItemError": "skip"}),
        json!([t("x", json!(1))])
    )]));
    assert!(
        has(
            &p,
            "steps[0].config.maxIterations: must be an integer from 1 to 10000"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "steps[0].config.maxConcurrency: must be an integer from 1 to 50"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "steps[0].config.onItemError: must be fail or continue"),
        "{p:?}"
    );

    // Five blocks deep is one too many.
    let mut body = json!([t("leaf", json!(1))]);
    for d in 0..5 {
        body = json!([looped(
            &format!("l{d}"),
            json!({"itemVariable": format!("v{d}"), "indexVariable": format!("i{d}")}),
            body
        )]);
    }
    let p = problems(body);
    assert!(has(&p, "nest at most 4 deep"), "{p:?}");

    let many: Vec<Value> = (0..50).map(|i| t(&format!("s{i}"), json!(i))).collect();
    let p = problems(json!([looped("each", json!({}), json!(many))]));
    assert!(p.is_empty(), "50 steps in a body are fine: {p:?}");
    let mut too_many = many.clone();
    too_many.push(t("s50", json!(1)));
    let p = problems(json!([looped("each", json!({}), json!(too_many))]));
    assert!(
        has(
            &p,
            "steps[0].config.steps: required: a list of 1 to 50 steps"
        ),
        "{p:?}"
    );
    let p = problems(json!([looped("each", json!({}), json!([]))]));
    assert!(
        has(
            &p,
            "steps[0].config.steps: required: a list of 1 to 50 steps"
        ),
        "{p:?}"
    );

    // 5 loops of 40 steps + 5 = 205 steps in all.
    let blocks: Vec<Value> = (0..5)
        .map(|b| {
            let body: Vec<Value> = (0..40).map(|i| t(&format!("b{b}s{i}"), json!(i))).collect();
            looped(&format!("loop{b}"), json!({}), json!(body))
        })
        .collect();
    let p = problems(json!(blocks));
    assert!(has(&p, "steps: at most 200 steps in all"), "{p:?}");

    let branches: serde_json::Map<String, Value> = (0..11)
        .map(|i| (format!("b{i}"), json!([t(&format!("x{i}"), json!(1))])))
        .collect();
    let p = problems(json!([{"id": "p", "type": "parallel", "config": {"branches": branches}}]));
    assert!(
        has(
            &p,
            "steps[0].config.branches: required: an object of 1 to 10 named branches"
        ),
        "{p:?}"
    );
    let p = problems(
        json!([{"id": "p", "type": "parallel", "config": {"branches": {"errors": [t("x", json!(1))]}, "waitForAll": false}}]),
    );
    assert!(
        has(&p, "steps[0].config.branches.errors: a branch name"),
        "{p:?}"
    );
    assert!(
        has(&p, "steps[0].config.waitForAll: unknown field"),
        "{p:?}"
    );
}

#[test]
fn ids_are_unique_across_bodies_and_problems_inside_bodies_name_their_path() {
    let p = problems(json!([
        t("x", json!(1)),
        looped("each", json!({}), json!([t("x", json!(2))]))
    ]));
    assert!(
        has(&p, "steps[1].config.steps[0].id: duplicate step id 'x'"),
        "{p:?}"
    );
    let p = problems(json!([looped(
        "each",
        json!({}),
        json!([
            t("a", json!(1)),
            {"id": "b", "type": "nope"},
            t("c", json!("{{ steps.d.output }}")),
            t("d", json!(1))
        ])
    )]));
    assert!(
        has(
            &p,
            "steps[0].config.steps[1].type: unknown step type 'nope'"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "steps[0].config.steps[2].config.mapping: step 'd' is referenced before it runs"
        ),
        "{p:?}"
    );
    let p = problems(json!([{"id": "l", "type": "loop", "config": {"steps": [t("a", json!(1))]}}]));
    assert!(has(&p, "steps[0].config.collection: required"), "{p:?}");
}

#[test]
fn break_loop_belongs_inside_a_loop_body() {
    let stop =
        json!({"id": "s", "type": "stop", "config": {"status": "completed", "breakLoop": true}});
    assert!(problems(json!([looped("each", json!({}), json!([stop.clone()]))])).is_empty());
    let p = problems(
        json!([{"id": "both", "type": "parallel", "config": {"branches": {"a": [stop]}}}]),
    );
    assert!(
        has(
            &p,
            "branches.a[0].config.breakLoop: only a stop inside a loop's body"
        ),
        "{p:?}"
    );
}

//! The rendering budget: every filter that can make its output larger than its input
//! stops at the limit before building the result, and so do text rendering and whole
//! trees of templates. Small budgets here stand in for the 10 MiB default.

use flowctl::template::{CompiledValue, Context, Template, TemplateErrorKind};
use serde_json::{Map, Value, json};

fn with_ctx<T>(input: Value, f: impl FnOnce(&Context) -> T) -> T {
    let steps = Map::new();
    let other = json!({});
    let ctx = Context {
        input: &input,
        steps: &steps,
        variables: &other,
        run: &other,
        workflow: &other,
        now: "2024-01-15T10:00:00.000Z",
        locals: &other,
    };
    f(&ctx)
}

/// Renders `src` with input `input` and a budget of `max` bytes.
fn render(src: &str, input: Value, max: usize) -> Result<Value, (TemplateErrorKind, String)> {
    let t = Template::parse(src).expect("template parses");
    with_ctx(input, |ctx| {
        t.render_within(ctx, max)
            .map(|r| r.value)
            .map_err(|e| (e.kind, e.to_string()))
    })
}

fn assert_too_large(src: &str, input: Value, max: usize, filter: &str) {
    match render(src, input, max) {
        Err((TemplateErrorKind::TooLarge, msg)) => assert!(
            msg.contains(filter) && msg.contains("limit"),
            "{src}: message names the filter and the limit: {msg}"
        ),
        other => panic!("{src}: expected TooLarge, got {other:?}"),
    }
}

#[test]
fn every_growing_filter_stops_at_the_budget() {
    let input = json!({
        "s": "a".repeat(100), "r": "b".repeat(100), "list": vec!["x"; 50],
        "lt": "<".repeat(100), "pct": "%".repeat(120), "q": "\"".repeat(100)
    });
    let cases = [
        ("{{ input.s | replace: 'a', input.r }}", "replace"),
        (
            "{{ input.s | append: input.r | append: input.r }}",
            "append",
        ),
        (
            "{{ input.s | prepend: input.r | prepend: input.r }}",
            "prepend",
        ),
        ("{{ input.list | join: input.r }}", "join"),
        ("{{ input.s | append: input.s | split: '' }}", "split"),
        ("{{ input.lt | escape }}", "escape"),
        ("{{ input.pct | url_encode }}", "url_encode"),
        ("{{ input.q | json | json }}", "json"),
    ];
    for (src, filter) in cases {
        assert_too_large(src, input.clone(), 300, filter);
    }
    // The same templates within a generous budget render.
    for (src, _) in cases {
        assert!(render(src, input.clone(), 1 << 20).is_ok(), "{src}");
    }
}

#[test]
fn map_counts_repeated_fields_as_the_array_grows() {
    let big = "y".repeat(200);
    let items: Vec<Value> = (0..10).map(|_| json!({"v": big})).collect();
    assert_too_large(
        "{{ input.items | map: 'v' }}",
        json!({"items": items}),
        1000,
        "map",
    );
}

#[test]
fn a_literal_chain_that_would_ask_for_gigabytes_fails_fast() {
    // 10 → 10^5 → 10^9 bytes if nothing stopped it; the default budget (10 MiB) stops it
    // before the third string is asked for.
    let src = format!(
        "{{{{ 'aaaaaaaaaa'{} }}}}",
        format!(" | replace: 'a', '{}'", "a".repeat(10_000)).repeat(3)
    );
    let t = Template::parse(&src).unwrap();
    assert!(t.is_constant());
    let started = std::time::Instant::now();
    let r = with_ctx(json!({}), |ctx| t.render(ctx));
    let e = r.expect_err("over the default budget");
    assert_eq!(e.kind, TemplateErrorKind::TooLarge);
    assert!(e.to_string().contains("10 MiB"), "{e}");
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn slice_never_grows_and_passes() {
    let input = json!({"s": "abcdef"});
    assert_eq!(
        render("{{ input.s | slice: 1, 3 }}", input, 10),
        Ok(json!("bcd"))
    );
}

#[test]
fn text_made_of_many_expressions_is_bounded_as_a_whole() {
    let input = json!({"s": "z".repeat(100)});
    let src = "{{ input.s }}-{{ input.s }}-{{ input.s }}";
    assert!(render(src, input.clone(), 302).is_ok());
    match render(src, input, 250) {
        Err((TemplateErrorKind::TooLarge, _)) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn a_tree_of_templates_is_bounded_as_a_whole() {
    let mapping: Map<String, Value> = (0..20)
        .map(|i| (format!("k{i}"), json!("{{ input.s }}")))
        .collect();
    let tree = CompiledValue::compile(&Value::Object(mapping)).expect("compiles");
    let input = json!({"s": "q".repeat(100)});
    with_ctx(input, |ctx| {
        assert!(tree.render_within(ctx, 10_000).is_ok());
        let (path, e) = tree.render_within(ctx, 1_000).expect_err("20 × 100 bytes");
        assert_eq!(e.kind, TemplateErrorKind::TooLarge);
        assert!(!path.is_empty(), "the error names where the budget ran out");
    });
}

#[test]
fn templates_reading_the_run_are_not_constant() {
    assert!(
        !Template::parse("{{ input.x | append: 'a' }}")
            .unwrap()
            .is_constant()
    );
    assert!(
        !Template::parse("{{ 'a' | append: input.x }}")
            .unwrap()
            .is_constant()
    );
    assert!(
        Template::parse("x {{ 'a' | append: 'b' }}")
            .unwrap()
            .is_constant()
    );
}

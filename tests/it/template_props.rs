//! Property tests: the parser and renderer never panic, plain text renders to itself, and
//! decimal numbers survive arithmetic and text rendering unchanged.

use flowctl::template::{CompiledValue, Context, Template};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

struct Owned {
    input: Value,
    steps: Map<String, Value>,
    other: Value,
}

impl Owned {
    fn new() -> Owned {
        let steps =
            json!({"s": {"output": {"n": 1.5, "list": [1, "a", null]}, "status": "completed"}});
        Owned {
            input: json!({
                "items": [{"quantity": 2, "price": 1999}, {"quantity": "x", "price": null}],
                "n": 0, "s": "abc", "t": "2024-01-15T10:30:00Z", "e": [], "o": {"a-b": [1, 2]}
            }),
            steps: steps.as_object().cloned().unwrap_or_default(),
            other: json!({"id": "run_1", "name": "wf"}),
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            input: &self.input,
            steps: &self.steps,
            variables: &self.other,
            run: &self.other,
            workflow: &self.other,
            now: "2024-01-15T10:00:00.000Z",
            locals: &self.other,
        }
    }
}

/// Fragments that make the parser go deep instead of failing on the first character.
fn template_soup() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("{{"),
        Just("}}"),
        Just(" "),
        Just("|"),
        Just(":"),
        Just(","),
        Just("."),
        Just("["),
        Just("]"),
        Just("'"),
        Just("\""),
        Just("input"),
        Just("steps.s.output"),
        Just("items"),
        Just("0"),
        Just("-1"),
        Just("1.5"),
        Just("runId"),
        Just("now"),
        Just("map: 'quantity * price'"),
        Just("map: '(a +'"),
        Just("sum"),
        Just("times: 0"),
        Just("divided_by: 0"),
        Just("date: '%Y'"),
        Just("slice: -9, 3"),
        Just("truncate: 2"),
        Just("join"),
        Just("where: 'a', 1"),
        Just("sort"),
        Just("default: null"),
        Just("tims"),
        Just("round: 99"),
        Just("é"),
        Just("x"),
        Just("\\"),
    ];
    prop::collection::vec(frag, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_and_render_never_panic(src in any::<String>()) {
        let owned = Owned::new();
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render(&owned.ctx());
        }
    }

    #[test]
    fn template_like_input_never_panics(src in template_soup()) {
        let owned = Owned::new();
        match Template::parse(&src) {
            Ok(t) => {
                let _ = t.render(&owned.ctx());
                let _ = t.step_refs();
            }
            Err(e) => {
                // Columns point inside the source (or just past its end).
                prop_assert!(e.column >= 1 && e.column <= src.chars().count() + 1, "{e:?}");
            }
        }
    }

    #[test]
    fn text_without_open_braces_renders_to_itself(src in "[^{]*|([^{]*\\{[^{])*") {
        prop_assume!(!src.contains("{{"));
        let owned = Owned::new();
        let t = Template::parse(&src).expect("plain text always parses");
        let r = t.render(&owned.ctx()).expect("plain text always renders");
        prop_assert_eq!(r.value, Value::String(src.clone()));
        prop_assert!(r.warnings.is_empty());
        let compiled = CompiledValue::compile(&json!({"k": src.clone()})).expect("compiles");
        prop_assert!(matches!(compiled, CompiledValue::Literal(_)));
    }

    #[test]
    fn number_literals_never_panic(lit in "-?[0-9]{1,40}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,12})?") {
        let owned = Owned::new();
        for src in [format!("{{{{ {lit} }}}}"), format!("{{{{ {lit} | times: {lit} | round: 2 }}}}"),
                    format!("{{{{ input.items | map: '{lit} * price' | sum | date: '%Y' }}}}")] {
            if let Ok(t) = Template::parse(&src) {
                let _ = t.render(&owned.ctx());
            }
        }
    }

    #[test]
    fn integers_keep_their_type(n in any::<i64>()) {
        let mut owned = Owned::new();
        owned.input = json!({"n": n});
        let r = Template::parse("{{ input.n }}").expect("parses").render(&owned.ctx()).expect("renders");
        prop_assert_eq!(r.value, json!(n));
        let text = Template::parse("n={{ input.n }}").expect("parses").render(&owned.ctx()).expect("renders");
        prop_assert_eq!(text.value, json!(format!("n={n}")));
    }

    #[test]
    fn decimals_round_trip_through_arithmetic_and_text(m in -1_000_000_000_000i64..1_000_000_000_000, scale in 0u32..7) {
        let d = Decimal::new(m, scale).normalize();
        let text = d.to_string();
        let owned = Owned::new();
        let src = format!("v={{{{ {text} | plus: 0 | times: 1 }}}}");
        let r = Template::parse(&src).expect("parses").render(&owned.ctx()).expect("renders");
        prop_assert_eq!(r.value, json!(format!("v={text}")));
    }

    #[test]
    fn decimal_addition_is_exact(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000) {
        let (x, y) = (Decimal::new(a, 2), Decimal::new(b, 2));
        let owned = Owned::new();
        let src = format!("= {{{{ {} | plus: {} }}}}", x.normalize(), y.normalize());
        let r = Template::parse(&src).expect("parses").render(&owned.ctx()).expect("renders");
        prop_assert_eq!(r.value, json!(format!("= {}", (x + y).normalize())));
    }
}

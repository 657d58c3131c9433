//! Data-driven template tests: every case in `tests/data/template_cases.txt` (context,
//! template, expected value or error), plus `CompiledValue` and `is_truthy` checks.

use flowctl::template::{
    CompiledValue, Context, PathSeg, Rendered, Template, TemplateError, TemplateErrorKind,
    format_path, is_truthy,
};
use serde_json::{Map, Value, json};

fn default_context() -> Value {
    json!({
        "input": {
            "customerId": "cus_123",
            "customer": {"id": "cus_123", "email": "ada@example.com", "name": "ada lovelace", "tier": "gold"},
            "items": [
                {"product": "Widget", "quantity": 2, "price": 1999},
                {"product": "Gadget", "quantity": 1, "price": 500}
            ],
            "amount": 9900, "qtyText": "12.50", "bad": "abc", "zero": 0, "neg": -3.7,
            "flag": true, "off": false, "empty": "", "nothing": null,
            "tags": ["a", "b", "a", "c"], "nums": [3, 1, 2], "mixed": [1, null, 2, null],
            "prices": ["1.50", "2.25"], "matrix": [[1, 2], [3, 4]],
            "headers": {"x-id": "h-1", "content type": "json"},
            "text": "  Hello World  ",
            "html": "<a href=\"x\">Tom & Jerry's</a>",
            "ts": "2024-01-15T10:30:00.000Z", "epoch": 1705314600, "day": "2024-01-15",
            "people": [
                {"name": "Bo", "age": 30, "active": true, "city": "Paris"},
                {"name": "Al", "age": 25, "active": false, "city": "Rome"},
                {"name": "Cy", "age": 35, "active": true, "city": "Paris"}
            ]
        },
        "steps": {
            "calculate-total": {"output": {"subtotal": 4498, "tax": 359.84, "total": 4857.84}, "status": "completed"},
            "create-invoice": {"output": {"id": "inv_123", "number": "INV-0042"}, "status": "completed"},
            "maybe": {"output": null, "status": "skipped"}
        },
        "variables": {"currency": "usd", "taxRate": 0.08, "support": {"email": "help@example.com"}},
        "run": {
            "id": "run_abc", "workflowId": "wf_process_customer_order",
            "workflowVersion": 3, "startedAt": "2024-01-15T10:00:00.000Z"
        },
        "workflow": {"id": "wf_process_customer_order", "name": "Process Customer Order"},
        "now": "2024-01-15T10:00:05.123Z"
    })
}

/// Owns the values a `Context` borrows.
struct Ctx {
    input: Value,
    steps: Map<String, Value>,
    variables: Value,
    run: Value,
    workflow: Value,
    now: String,
}

impl Ctx {
    fn from(mut all: Value) -> Ctx {
        let mut take = |k: &str| all.get_mut(k).map(Value::take).unwrap_or(Value::Null);
        Ctx {
            input: take("input"),
            steps: match take("steps") {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            variables: take("variables"),
            run: take("run"),
            workflow: take("workflow"),
            now: take("now").as_str().unwrap_or_default().to_string(),
        }
    }

    fn context(&self) -> Context<'_> {
        Context {
            input: &self.input,
            steps: &self.steps,
            variables: &self.variables,
            run: &self.run,
            workflow: &self.workflow,
            now: &self.now,
            locals: &serde_json::Value::Null,
        }
    }
}

#[derive(Default, Debug)]
struct Case {
    name: String,
    line: usize,
    ctx: Option<Value>,
    template: Option<String>,
    out: Option<Value>,
    err: Option<String>,
    filter: Option<String>,
    warns: Vec<String>,
    any_warnings: bool,
    refs: Option<Vec<String>>,
}

fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix("== ") {
            cases.push(Case {
                name: name.to_string(),
                line: i + 1,
                ..Case::default()
            });
            continue;
        }
        let case = cases
            .last_mut()
            .unwrap_or_else(|| panic!("line {}: key before any case", i + 1));
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let json = |s: &str| -> Value {
            serde_json::from_str(s).unwrap_or_else(|e| panic!("line {}: bad JSON {s}: {e}", i + 1))
        };
        match key {
            "ctx" => case.ctx = Some(json(rest)),
            "tpl" => case.template = Some(rest.to_string()),
            "tplj" => {
                case.template = Some(json(rest).as_str().expect("tplj is a string").to_string())
            }
            "out" => case.out = Some(json(rest)),
            "str" => case.out = Some(Value::String(rest.to_string())),
            "strj" => case.out = Some(json(rest)),
            "err" => case.err = Some(rest.to_string()),
            "filter" => case.filter = Some(rest.to_string()),
            "warn" if rest == "*" => case.any_warnings = true,
            "warn" => case.warns.push(rest.to_string()),
            "refs" => {
                case.refs = Some(
                    rest.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                )
            }
            _ => panic!("line {}: unknown key {key:?}", i + 1),
        }
    }
    cases
}

fn kind_name(kind: TemplateErrorKind) -> String {
    format!("{kind:?}")
}

/// Checks an error against `Kind [@col] [text]`.
fn check_error(spec: &str, err: &TemplateError) -> Result<(), String> {
    let (kind, mut rest) = spec.split_once(' ').unwrap_or((spec, ""));
    if kind_name(err.kind) != kind {
        return Err(format!("kind {:?}, expected {kind}", err.kind));
    }
    if let Some(col) = rest.strip_prefix('@') {
        let (n, after) = col.split_once(' ').unwrap_or((col, ""));
        let n: usize = n
            .parse()
            .map_err(|_| format!("bad column in spec {spec:?}"))?;
        if err.column != n {
            return Err(format!("column {}, expected {n}", err.column));
        }
        rest = after;
    }
    match rest.strip_prefix('=') {
        Some(exact) if err.message != exact => Err(format!(
            "message {:?}, expected exactly {exact:?}",
            err.message
        )),
        None if !err.message.contains(rest) => {
            Err(format!("message {:?} lacks {rest:?}", err.message))
        }
        _ => Ok(()),
    }
}

fn run_case(case: &Case, base: &Value) -> Result<(), String> {
    let mut ctx_value = base.clone();
    if let Some(Value::Object(over)) = &case.ctx {
        for (k, v) in over {
            ctx_value[k] = v.clone();
        }
    }
    let owned = Ctx::from(ctx_value);
    let ctx = owned.context();
    let src = case.template.as_deref().ok_or("no template")?;
    let result: Result<(Template, Rendered), TemplateError> =
        Template::parse(src).and_then(|t| t.render(&ctx).map(|r| (t, r)));
    match (&case.err, result) {
        (Some(spec), Err(e)) => {
            check_error(spec, &e)?;
            if let Some(f) = &case.filter
                && e.filter.as_deref() != Some(f)
            {
                return Err(format!("filter {:?}, expected {f}", e.filter));
            }
            let shown = e.to_string();
            if !shown.ends_with(&format!("(column {})", e.column)) {
                return Err(format!("Display {shown:?} lacks the column"));
            }
            Ok(())
        }
        (Some(spec), Ok((_, r))) => Err(format!("expected error {spec}, got {}", r.value)),
        (None, Err(e)) => Err(format!("unexpected error {:?}: {e}", e.kind)),
        (None, Ok((t, r))) => {
            if let Some(want) = &case.out
                && &r.value != want
            {
                return Err(format!("got {}, expected {want}", r.value));
            }
            if !case.any_warnings && r.warnings != case.warns {
                return Err(format!(
                    "warnings {:?}, expected {:?}",
                    r.warnings, case.warns
                ));
            }
            if let Some(refs) = &case.refs
                && t.step_refs() != *refs
            {
                return Err(format!("step_refs {:?}, expected {refs:?}", t.step_refs()));
            }
            Ok(())
        }
    }
}

#[test]
fn data_driven_cases() {
    let text = include_str!("../data/template_cases.txt");
    let cases = parse_cases(text);
    let base = default_context();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            run_case(c, &base)
                .err()
                .map(|e| format!("line {} ({}): {e}", c.line, c.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    println!("{} template cases passed", cases.len());
}

#[test]
fn every_error_kind_is_covered() {
    let text = include_str!("../data/template_cases.txt");
    for kind in [
        TemplateErrorKind::Syntax,
        TemplateErrorKind::UnknownFilter,
        TemplateErrorKind::FilterArity,
        TemplateErrorKind::FilterType,
        TemplateErrorKind::Arithmetic,
        TemplateErrorKind::Expression,
        TemplateErrorKind::UnknownOperator,
        TemplateErrorKind::Comparison,
    ] {
        assert!(
            text.contains(&format!("\nerr {kind:?}")),
            "no case for {kind:?}"
        );
    }
}

fn seed_ctx() -> Ctx {
    Ctx::from(default_context())
}

#[test]
fn compiled_value_renders_the_seed_mapping() {
    let config = json!({
        "mapping": {
            "subtotal": "{{input.items | map: 'quantity * price' | sum}}",
            "tax": "{{input.items | map: 'quantity * price' | sum | times: 0.08}}",
            "total": "{{input.items | map: 'quantity * price' | sum | times: 1.08}}"
        },
        "note": "plain",
        "list": [1, "{{ input.customerId }}"]
    });
    let compiled = CompiledValue::compile(&config).expect("compiles");
    let owned = seed_ctx();
    let r = compiled.render(&owned.context()).expect("renders");
    assert_eq!(
        r.value,
        json!({
            "mapping": {"subtotal": 4498, "tax": 359.84, "total": 4857.84},
            "note": "plain",
            "list": [1, "cus_123"]
        })
    );
    assert!(r.warnings.is_empty());
    assert!(
        matches!(&compiled, CompiledValue::Object(f) if f.iter().any(|(k, v)| k == "note" && matches!(v, CompiledValue::Literal(_))))
    );
}

#[test]
fn compiled_value_without_templates_is_one_literal() {
    let v = json!({"a": [1, {"b": "no braces here }}"}], "c": null});
    assert!(matches!(CompiledValue::compile(&v), Ok(CompiledValue::Literal(l)) if l == v));
}

#[test]
fn compile_collects_every_error_with_its_path() {
    let v = json!({
        "to": "{{ input.email | upcas }}",
        "items": ["ok {{ input.a }}", "{{ foo }}"],
        "amount": "{{ input.x | times }}",
        "body": {"html": "{{ input.items | map: 'a *' }}", "text": "{{ input.a"}
    });
    let errors = CompiledValue::compile(&v).expect_err("five mistakes");
    let found: Vec<(String, TemplateErrorKind)> = errors
        .iter()
        .map(|(p, e)| (format_path(p), e.kind))
        .collect();
    assert_eq!(
        found,
        vec![
            ("to".to_string(), TemplateErrorKind::UnknownFilter),
            ("items[1]".to_string(), TemplateErrorKind::Syntax),
            ("amount".to_string(), TemplateErrorKind::FilterArity),
            ("body.html".to_string(), TemplateErrorKind::Expression),
            ("body.text".to_string(), TemplateErrorKind::Syntax),
        ],
        "in the order of the document"
    );
    assert_eq!(
        errors[1].0,
        vec![PathSeg::Key("items".into()), PathSeg::Index(1)]
    );
    assert_eq!(
        serde_json::to_value(&errors[1].0).expect("serializes"),
        json!(["items", 1])
    );
}

#[test]
fn compiled_value_step_refs_and_warning_paths() {
    let v = json!({
        "amount": "{{ steps.calculate-total.output.total }}",
        "subject": "Invoice #{{ steps.create-invoice.output.number }} for {{ input.customerEmail }}",
        "nested": [{"x": "{{ steps.later.output }}"}]
    });
    let compiled = CompiledValue::compile(&v).expect("compiles");
    let refs: Vec<(String, String)> = compiled
        .step_refs()
        .into_iter()
        .map(|(p, id)| (format_path(&p), id))
        .collect();
    assert_eq!(
        refs,
        vec![
            ("amount".to_string(), "calculate-total".to_string()),
            ("subject".to_string(), "create-invoice".to_string()),
            ("nested[0].x".to_string(), "later".to_string()),
        ]
    );
    let owned = seed_ctx();
    let r = compiled.render(&owned.context()).expect("renders");
    assert_eq!(r.value["subject"], json!("Invoice #INV-0042 for "));
    assert_eq!(
        r.warnings,
        vec![
            "subject: unresolved path 'input.customerEmail'".to_string(),
            "nested[0].x: unresolved path 'steps.later.output'".to_string(),
        ]
    );
}

#[test]
fn compiled_value_render_error_has_the_path() {
    let v = json!({"config": {"amount": "{{ input.bad | times: 2 }}"}});
    let compiled = CompiledValue::compile(&v).expect("compiles");
    let owned = seed_ctx();
    let (path, err) = compiled.render(&owned.context()).expect_err("type error");
    assert_eq!(format_path(&path), "config.amount");
    assert_eq!(err.kind, TemplateErrorKind::FilterType);
    assert_eq!(err.filter.as_deref(), Some("times"));
    assert_eq!(
        err.to_string(),
        "filter 'times' expects a number, got string \"abc\" (column 16)"
    );
}

#[test]
fn truthiness_for_step_if() {
    for falsy in [json!(false), json!(null), json!(""), json!(0), json!(0.0)] {
        assert!(!is_truthy(&falsy), "{falsy}");
    }
    for truthy in [
        json!(true),
        json!("0"),
        json!("false"),
        json!(1),
        json!(-0.5),
        json!([]),
        json!({}),
    ] {
        assert!(is_truthy(&truthy), "{truthy}");
    }
    let owned = seed_ctx();
    let ctx = owned.context();
    let cond = |src: &str| {
        is_truthy(
            &Template::parse(src)
                .expect("parses")
                .render(&ctx)
                .expect("renders")
                .value,
        )
    };
    assert!(cond("{{ input.flag }}"));
    assert!(!cond("{{ input.off }}"));
    assert!(!cond("{{ input.missing }}"));
    assert!(cond(
        "{{ steps.calculate-total.output.total | at_least: 100 }}"
    ));
    assert!(!cond("{{ input.people | where: 'city', 'Oslo' | size }}"));
}

#[test]
fn templates_are_shareable() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_traits::<Template>();
    assert_traits::<CompiledValue>();
    let t = Template::parse("Total: ${{ steps.calculate-total.output.total }}").expect("parses");
    assert_eq!(
        t.source(),
        "Total: ${{ steps.calculate-total.output.total }}"
    );
    assert!(!t.is_single_expression());
}

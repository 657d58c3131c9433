//! Render benchmark: the seed's calculate-total mapping (subtotal, tax, total) over 100
//! items, compiled once and rendered many times, and a decimal chain (fractional prices,
//! `divided_by` / `times` / `round` after the `sum`) over the same items. Prints the
//! median ns per render of each.
//! Run: `cargo bench --bench template_render`

use flowctl::template::{CompiledValue, Context};
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::time::Instant;

const ITEMS: usize = 100;
const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

/// Renders `compiled` SAMPLES times and prints the percentiles in ns.
fn measure(label: &str, compiled: &CompiledValue, ctx: &Context) {
    for _ in 0..WARMUP {
        black_box(compiled.render(black_box(ctx)).ok());
    }
    let mut ns: Vec<u128> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            black_box(compiled.render(black_box(ctx)).ok());
            start.elapsed().as_nanos()
        })
        .collect();
    ns.sort_unstable();
    let pct = |p: usize| ns[(ns.len() - 1) * p / 100];
    println!("template_render: {label}, {SAMPLES} renders");
    println!(
        "  median {} ns/render   p10 {} ns   p90 {} ns   p99 {} ns",
        pct(50),
        pct(10),
        pct(90),
        pct(99)
    );
}

fn main() {
    let items: Vec<Value> = (0..ITEMS)
        .map(|i| {
            json!({
                "productId": format!("prod_{i}"),
                "quantity": i % 5 + 1,
                "price": 199 + i * 37,
                "unitPrice": ((199 + i * 37) as f64) / 100.0 + 0.05
            })
        })
        .collect();
    let input = json!({"customerId": "cus_123", "items": items});
    let steps = Map::new();
    let run = json!({"id": "run_1", "workflowId": "wf_x", "workflowVersion": 1, "startedAt": "2024-01-15T10:00:00.000Z"});
    let workflow = json!({"id": "wf_x", "name": "X"});
    let ctx = Context {
        input: &input,
        steps: &steps,
        variables: &Value::Null,
        run: &run,
        workflow: &workflow,
        now: "2024-01-15T10:00:05.123Z",
        locals: &Value::Null,
    };

    let seed = json!({
        "subtotal": "{{input.items | map: 'quantity * price' | sum}}",
        "tax": "{{input.items | map: 'quantity * price' | sum | times: 0.08}}",
        "total": "{{input.items | map: 'quantity * price' | sum | times: 1.08}}"
    });
    let compiled = CompiledValue::compile(&seed).expect("seed mapping compiles");
    let expected: i64 = (0..ITEMS as i64)
        .map(|i| (i % 5 + 1) * (199 + i * 37))
        .sum();
    let first = compiled.render(&ctx).expect("renders");
    assert_eq!(
        first.value["subtotal"],
        json!(expected),
        "subtotal is exact"
    );
    assert!(first.warnings.is_empty());
    measure(
        &format!("seed calculate-total mapping (3 templates) over {ITEMS} items"),
        &compiled,
        &ctx,
    );

    // Fractional amounts and a chain of number filters after the sum: the case where every
    // intermediate result used to go through an f64.
    let chain = json!({
        "net": "{{input.items | map: 'quantity * unitPrice' | sum | round: 2}}",
        "share": "{{input.items | map: 'quantity * unitPrice' | sum | divided_by: 3 | times: 1.08 | round: 2}}",
        "due": "{{input.items | map: 'quantity * unitPrice / 3' | sum | times: 3 | minus: 0.5 | at_least: 0}}"
    });
    let compiled = CompiledValue::compile(&chain).expect("decimal chain compiles");
    assert!(compiled.render(&ctx).expect("renders").warnings.is_empty());
    measure(
        &format!("decimal chain mapping (3 templates) over {ITEMS} items"),
        &compiled,
        &ctx,
    );
}

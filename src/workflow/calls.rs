//! The static calls of a definition: its `workflow` steps with a literal target.

use serde_json::{Value, json};

/// `(step index, target, literal input)` of each `workflow` step whose
/// `workflowId` is literal; the input only when it holds no template.
pub fn literal_targets(def: &Value) -> Vec<(usize, String, Option<Value>)> {
    let Some(steps) = def.get("steps").and_then(Value::as_array) else {
        return vec![];
    };
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.get("type").and_then(Value::as_str) == Some("workflow"))
        .filter_map(|(i, s)| {
            let cfg = s.get("config")?;
            let target = cfg.get("workflowId")?.as_str()?;
            if target.contains("{{") {
                return None;
            }
            let input = cfg.get("input").cloned().unwrap_or_else(|| json!({}));
            let literal = !input.to_string().contains("{{");
            Some((i, target.to_string(), literal.then_some(input)))
        })
        .collect()
}

//! Apply-time checks of `workflow` steps, which need the store: a literal
//! target must exist (the CLI applies a batch in call order, so a target in
//! the same `flowctl apply` is stored first), a literal input must fit the
//! target's `inputSchema`, and a static call cycle is warned about (runs of
//! a cycle stop at depth 25 with `MAX_DEPTH`).

use crate::api::ErrorDetail;
use crate::catalog::Catalog;
use crate::store::StoreError;
use crate::workflow::literal_targets;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Problems (refuse the apply) and warnings of the `workflow` steps of `def`, whose id is `id`.
pub async fn check(
    catalog: &Catalog,
    id: &str,
    def: &Value,
) -> Result<(Vec<ErrorDetail>, Vec<ErrorDetail>), StoreError> {
    let (mut problems, mut warnings) = (vec![], vec![]);
    for (i, target, input) in literal_targets(def) {
        let at = |field: &str| vec![json!("steps"), json!(i), json!("config"), json!(field)];
        if target == id {
            warnings.push(ErrorDetail {
                path: at("workflowId"),
                message: format!(
                    "'{id}' calls itself: a static call cycle (its runs stop at depth 25 with MAX_DEPTH)"
                ),
            });
            continue;
        }
        let wf = match catalog.head(&target).await {
            Ok((_, wf)) => wf,
            Err(StoreError::NotFound(_)) => {
                problems.push(ErrorDetail {
                    path: at("workflowId"),
                    message: format!(
                        "workflow '{target}' does not exist (apply it first, or in the same `flowctl apply`)"
                    ),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        if let (Some(schema), Some(input)) = (&wf.input_schema, input)
            && let Err(violations) = schema.apply(input)
        {
            for v in violations {
                let mut path = at("input");
                path.extend(v.path);
                problems.push(ErrorDetail {
                    path,
                    message: format!("does not fit the inputSchema of '{target}': {}", v.message),
                });
            }
        }
        if let Some(chain) = reaches(catalog, &target, id).await? {
            warnings.push(ErrorDetail {
                path: at("workflowId"),
                message: format!(
                    "static call cycle: {id} -> {} -> {id} (its runs stop at depth 25 with MAX_DEPTH)",
                    chain.join(" -> ")
                ),
            });
        }
    }
    Ok((problems, warnings))
}

/// The chain of stored workflows from `from` that calls `to` statically, if any
/// (breadth-first over latest versions, at most 25 hops).
async fn reaches(
    catalog: &Catalog,
    from: &str,
    to: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut frontier = vec![vec![from.to_string()]];
    for _ in 0..25 {
        let mut next = vec![];
        for chain in frontier {
            let last = chain.last().cloned().unwrap_or_default();
            if !seen.insert(last.clone()) {
                continue;
            }
            let wf = match catalog.head(&last).await {
                Ok((_, wf)) => wf,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            for (_, target, _) in literal_targets(&wf.definition) {
                if target == to {
                    return Ok(Some(chain));
                }
                let mut longer = chain.clone();
                longer.push(target);
                next.push(longer);
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(None)
}

//! Stripe-style form encoding (`application/x-www-form-urlencoded` with bracket nesting) and
//! the camelCase → snake_case parameter mapping. Pure; depends on serde_json only.
//!
//! Encoding rules (as Stripe's official libraries do):
//! * objects nest with brackets: `metadata[source]=api-order`;
//! * arrays use indices: `expand[0]=customer`, `lines[0][amount]=100`; an empty array is
//!   sent as `key=` (Stripe's way to clear a list);
//! * booleans are `true`/`false`, numbers their canonical JSON text (`1999`, `4857.84`);
//! * `null` is omitted (a template that resolved to nothing sends nothing; send `""`
//!   to clear a field at Stripe); an empty object is omitted;
//! * object keys are emitted in sorted order at every level, so the same config always
//!   gives the same body (Stripe compares parameters when an idempotency key is replayed);
//! * percent-encoding keeps RFC 3986 unreserved characters, and `[`/`]` in keys; a space
//!   is `%20`.

use serde_json::Value;

/// Flatten `(name, value)` parameters into form pairs, top-level names sorted.
pub(crate) fn flatten(params: &[(String, Value)]) -> Vec<(String, String)> {
    let mut sorted: Vec<&(String, Value)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (name, value) in sorted {
        flatten_into(name.clone(), value, &mut out);
    }
    out
}

fn flatten_into(prefix: String, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((prefix, b.to_string())),
        Value::Number(n) => out.push((prefix, n.to_string())),
        Value::String(s) => out.push((prefix, s.clone())),
        Value::Array(items) if items.is_empty() => out.push((prefix, String::new())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_into(format!("{prefix}[{i}]"), item, out);
            }
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                flatten_into(format!("{prefix}[{key}]"), &map[key], out);
            }
        }
    }
}

/// Join pairs into a form body / query string.
pub(crate) fn encode(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, true, &mut out);
        out.push('=');
        percent_encode(v, false, &mut out);
    }
    out
}

fn percent_encode(text: &str, is_key: bool, out: &mut String) {
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (is_key && matches!(byte, b'[' | b']'));
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// `customerId` → `customer_id`; already snake_case names are unchanged.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Convert keys to Stripe's snake_case at every level, except inside `metadata`
/// objects, whose keys belong to the user.
pub(crate) fn snake_case_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let name = snake_case(k);
                    let v = if name == "metadata" {
                        v.clone()
                    } else {
                        snake_case_keys(v)
                    };
                    (name, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(snake_case_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> String {
        let params: Vec<(String, Value)> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        encode(&flatten(&params))
    }

    #[test]
    fn nests_like_stripe() {
        assert_eq!(
            enc(json!({
                "customer": "cus_123",
                "metadata": {"source": "api-order", "note": "a b&c=d/é"},
                "lines": [{"amount": 100, "description": "x"}, {"amount": -5}],
                "expand": ["customer"],
                "auto_advance": false,
                "tax_rates": [],
                "skip": null,
                "empty": {},
                "amount_decimal": 4857.84
            })),
            "amount_decimal=4857.84&auto_advance=false&customer=cus_123\
             &expand[0]=customer&lines[0][amount]=100&lines[0][description]=x\
             &lines[1][amount]=-5&metadata[note]=a%20b%26c%3Dd%2F%C3%A9\
             &metadata[source]=api-order&tax_rates="
        );
    }

    #[test]
    fn keys_are_escaped_but_brackets_kept() {
        assert_eq!(
            enc(json!({"metadata": {"order id": "1"}})),
            "metadata[order%20id]=1"
        );
    }

    #[test]
    fn snake_cases_except_metadata() {
        assert_eq!(snake_case("daysUntilDue"), "days_until_due");
        assert_eq!(snake_case("auto_advance"), "auto_advance");
        assert_eq!(snake_case("line1"), "line1");
        assert_eq!(
            snake_case_keys(&json!({
                "invoiceSettings": {"defaultPaymentMethod": "pm_1"},
                "metadata": {"orderId": "o1"}
            })),
            json!({
                "invoice_settings": {"default_payment_method": "pm_1"},
                "metadata": {"orderId": "o1"}
            })
        );
    }
}

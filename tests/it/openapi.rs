//! Keeps `GET /api/v1/openapi.json` true: it is structurally valid OpenAPI
//! 3.1, every route the router serves is documented and every documented
//! operation is served, and real answers (successes and errors) match their
//! documented status, content type, headers and schema.

#[path = "openapi/answers.rs"]
mod answers;
#[path = "openapi/support.rs"]
mod support;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::*;

/// Every route of docs/api.md (method, path).
const KNOWN_ROUTES: [(&str, &str); 34] = [
    ("POST", "/api/v1/workflows/{id}/run"),
    ("POST", "/api/v1/workflows/{id}/test-delivery"),
    ("POST", "/api/v1/ui-links"),
    ("GET", "/api/v1/runs/{id}"),
    ("GET", "/api/v1/runs"),
    ("POST", "/api/v1/runs/{id}/cancel"),
    ("POST", "/api/v1/runs/{id}/replay"),
    ("POST", "/api/v1/runs/{id}/redrive"),
    ("POST", "/api/v1/runs/{id}/steps/{step}/decision"),
    ("POST", "/api/v1/runs/{id}/steps/{step}/callback"),
    ("GET", "/api/v1/approvals"),
    ("POST", "/callbacks/{token}"),
    ("POST", "/webhooks/{path}"),
    ("POST", "/api/v1/workflows"),
    ("GET", "/api/v1/workflows"),
    ("GET", "/api/v1/workflows/{id}"),
    ("DELETE", "/api/v1/workflows/{id}"),
    ("POST", "/api/v1/workflows/{id}/activate"),
    ("POST", "/api/v1/workflows/{id}/pause"),
    ("GET", "/api/v1/workflows/{id}/versions/{n}"),
    ("POST", "/api/v1/connections"),
    ("GET", "/api/v1/connections"),
    ("GET", "/api/v1/connections/{id}"),
    ("DELETE", "/api/v1/connections/{id}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/webhook-endpoints"),
    ("GET", "/api/v1/webhook-endpoints"),
    ("GET", "/api/v1/webhook-endpoints/{id}"),
    ("DELETE", "/api/v1/webhook-endpoints/{id}"),
    ("POST", "/api/v1/webhook-endpoints/{id}/enable"),
    ("GET", "/api/v1/webhook-endpoints/{id}/deliveries"),
    ("POST", "/api/v1/deliveries/{id}/redeliver"),
];

/// The document, fetched without a key.
async fn document(s: &Server) -> Value {
    let a = call(s, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let doc: Value = serde_json::from_str(&a.text).expect("openapi.json is JSON");
    check_answer(&doc, "GET", "/api/v1/openapi.json", &a);
    doc
}

async fn call(
    s: &Server,
    method: Method,
    path: &str,
    body: Option<String>,
    key: Option<&str>,
) -> Answer {
    let mut req = s.http.request(method, format!("{}{}", s.url, path));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.expect("request");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

fn is_authenticated(doc: &Value, op: &Value) -> bool {
    let security = op.get("security").unwrap_or(&doc["security"]);
    !security.as_array().unwrap().is_empty()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_structurally_valid_openapi_3_1() {
    let s = Server::start();
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut all_refs = vec![];
    refs(&doc, &mut all_refs);
    assert!(
        all_refs.len() > 50,
        "the document shares its pieces by $ref"
    );
    for r in &all_refs {
        resolve(&doc, r);
    }
    let schemes = &doc["components"]["securitySchemes"];
    let api_key = &schemes["ApiKey"];
    assert_eq!(
        [&api_key["type"], &api_key["in"], &api_key["name"]],
        ["apiKey", "header", "x-api-key"]
    );
    let bearer = &schemes["Bearer"];
    assert_eq!([&bearer["type"], &bearer["scheme"]], ["http", "bearer"]);
    for schema in doc["components"]["schemas"].as_object().unwrap().values() {
        // Compiles (panics otherwise) with every $ref inlined.
        let _ = schema_errors(&inline(&doc, schema), &Value::Null);
    }

    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let at = format!("{method} {path}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: operationId"));
        assert!(
            ids.insert(id.to_string()),
            "{at}: duplicate operationId {id}"
        );
        for req in op["security"].as_array().into_iter().flatten() {
            for scheme in req.as_object().unwrap().keys() {
                assert!(
                    schemes.get(scheme).is_some(),
                    "{at}: unknown scheme {scheme}"
                );
            }
        }
        // Path templates and path parameters agree.
        let params = parameters(&doc, &path, &op);
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(
                params
                    .iter()
                    .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true),
                "{at}: path parameter {name} is not declared"
            );
        }
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{at}: responses"));
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{at}: no success answer"
        );
        for (status, resp) in responses {
            let resp = inline(&doc, resp);
            assert!(
                resp["description"].is_string(),
                "{at} {status}: description"
            );
            let content = resp["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{at} {status}: content"));
            assert!(!content.is_empty(), "{at} {status}: content");
            for (media, m) in content {
                assert!(m["schema"].is_object(), "{at} {status} {media}: schema");
                let _ = schema_errors(&m["schema"], &Value::Null);
                if !status.starts_with('2') {
                    assert_eq!(
                        media, "application/json",
                        "{at} {status}: errors are JSON envelopes"
                    );
                    let envelope =
                        json!({"success": false, "error": {"code": "X", "message": "m"}});
                    assert!(
                        !schema_errors(&m["schema"], &envelope).is_empty(),
                        "{at} {status}: the schema pins the error code"
                    );
                }
            }
        }
        let has = |s: u16| responses.contains_key(&s.to_string());
        // Everything but the static document can fail inside.
        assert!(has(500) || path == "/api/v1/openapi.json", "{at}: 500");
        if is_authenticated(&doc, &op) {
            for s in [401, 403, 429] {
                assert!(has(s), "{at}: {s}");
            }
            for (status, resp) in responses.iter().filter(|(k, _)| k.starts_with('2')) {
                let headers = &inline(&doc, resp)["headers"];
                for h in [
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                ] {
                    assert_eq!(headers[h]["required"], true, "{at} {status}: header {h}");
                }
            }
            let limited = inline(&doc, &op["responses"]["429"]);
            assert_eq!(
                limited["headers"]["Retry-After"]["required"], true,
                "{at}: Retry-After"
            );
        }
        if op.get("requestBody").is_some() {
            assert!(
                has(400) && has(413),
                "{at}: a body can be malformed or too large"
            );
        }
        if path.contains("{id}") {
            assert!(has(404), "{at}: 404");
        }
    }

    let query = |method: &str, path: &str| -> Vec<String> {
        let op = &doc["paths"][path][method];
        parameters(&doc, path, op)
            .into_iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(query("post", "/api/v1/workflows/{id}/run"), ["wait"]);
    assert_eq!(query("get", "/api/v1/runs/{id}"), ["wait"]);
    assert_eq!(
        query("get", "/api/v1/runs"),
        [
            "workflowId",
            "status",
            "triggerType",
            "parentRunId",
            "includeChildren",
            "limit",
            "cursor"
        ]
    );
    assert_eq!(query("get", "/api/v1/workflows"), ["limit", "cursor"]);
    let replay = documented_response(&doc, "POST", "/api/v1/workflows/{id}/run", 200);
    assert_eq!(replay["headers"]["Idempotent-Replayed"]["required"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let s = Server::start();
    let doc = document(&s).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let known: BTreeSet<(String, String)> = KNOWN_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, known,
        "the document lists exactly the routes of docs/api.md"
    );

    // Every route registered in src/http/*.rs, under any nest prefix.
    let (routes, prefixes) = routes_in_source();
    assert!(routes.len() >= 10, "routes found in the source: {routes:?}");
    for (method, literal) in &routes {
        assert!(
            prefixes
                .iter()
                // A catch-all `{*path}` is documented as the parameter `{path}`.
                .any(|p| documented
                    .contains(&(method.clone(), format!("{p}{}", literal.replace("{*", "{"))))),
            "{method} {literal} is served but not documented"
        );
    }

    // Every documented operation is served; other methods get the 405 envelope.
    let not_allowed = inline(&doc, &doc["components"]["responses"]["MethodNotAllowed"]);
    let not_found = inline(&doc, &doc["components"]["responses"]["RouteNotFound"]);
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = concrete(path);
        for m in METHODS {
            let method = m.to_uppercase();
            let body = (method == "POST").then(|| "{}".to_string());
            let a = call(&s, method.parse().unwrap(), &concrete, body, Some(&s.key)).await;
            let at = format!("{method} {concrete} → {}: {}", a.status, a.text);
            if documented.contains(&(method.clone(), path.clone())) {
                assert!(
                    a.status != 405 && !(a.status == 404 && a.text.contains("Route not found")),
                    "documented but not served: {at}"
                );
                check_answer(&doc, &method, path, &a);
            } else {
                assert_eq!(a.status, 405, "undocumented method: {at}");
                let body: Value = serde_json::from_str(&a.text).unwrap();
                let schema = &not_allowed["content"]["application/json"]["schema"];
                assert!(schema_errors(schema, &body).is_empty(), "{at}");
            }
        }
    }
    let a = call(&s, Method::GET, "/api/v1/nope", None, Some(&s.key)).await;
    assert_eq!(a.status, 404);
    let body: Value = serde_json::from_str(&a.text).unwrap();
    assert_eq!(body["error"]["message"], "Route not found");
    let schema = &not_found["content"]["application/json"]["schema"];
    assert!(schema_errors(schema, &body).is_empty(), "{}", a.text);
}

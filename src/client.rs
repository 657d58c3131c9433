//! Typed client for the flowctl API: returns the wire types of `api`, encodes
//! query parameters, pages through lists; the one place that decodes error
//! envelopes.

use crate::api::{
    ApplyResponse, ConnectionView, ErrorBody, ErrorEnvelope, ListMeta, RunView, TriggerRequest,
    TriggerResponse, WorkflowView, codes,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the flowctl server at {url}: {reason} (start it with `flowctl serve`, or set --url / FLOWCTL_URL)"
    )]
    Unreachable { url: String, reason: String },
    /// A 4xx answer: the request was rejected. `hint` says how to fix it, when we know.
    #[error("{}: {}{}", .error.code, .error.message, .hint.as_deref().map(|h| format!("\n  {h}")).unwrap_or_default())]
    Rejected {
        status: u16,
        error: ErrorBody,
        headers: Box<HeaderMap>,
        hint: Option<String>,
    },
    /// A 5xx answer.
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Rejected { error, .. } => Some(&error.code),
            _ => None,
        }
    }
}

/// A decoded success answer.
pub struct Answer<T> {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub data: T,
    pub meta: Option<ListMeta>,
}

/// Filters of `GET /api/v1/runs`.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    pub workflow_id: Option<String>,
    pub status: Option<String>,
    pub trigger_type: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only the child runs of this run.
    pub parent_run_id: Option<String>,
}

#[derive(Clone)]
pub struct Client {
    base: String,
    key: String,
    /// Where the key came from, for the hint on a 401.
    key_origin: String,
    http: reqwest::Client,
}

/// A path segment, percent-encoded (ids come from users).
fn seg(s: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse("http://x/") else {
        return s.to_string();
    };
    url.path_segments_mut()
        .map(|mut p| {
            p.push(s);
        })
        .ok();
    url.path().trim_start_matches('/').to_string()
}

impl Client {
    pub fn new(base: &str, key: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            key_origin: "--api-key".into(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Say where the key came from (`FLOWCTL_API_KEY`, the credentials entry for …).
    pub fn with_key_origin(mut self, origin: impl Into<String>) -> Client {
        self.key_origin = origin.into();
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub async fn trigger(
        &self,
        workflow_id: &str,
        body: &TriggerRequest,
        wait_secs: Option<f64>,
    ) -> Result<Answer<TriggerResponse>, ClientError> {
        let mut query = vec![];
        if let Some(w) = wait_secs {
            query.push(("wait", format!("{w:.3}")));
        }
        let path = format!("/api/v1/workflows/{}/run", seg(workflow_id));
        // The key also as a header: a trigger that only replays a known run
        // is then not charged to the execute rate limit.
        let key = body.idempotency_key.clone();
        let body = serde_json::to_value(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call_with(Method::POST, &path, &query, Some(&body), key.as_deref())
            .await
    }

    /// A new run with the same input and connection (latest active version).
    pub async fn replay(&self, run_id: &str) -> Result<TriggerResponse, ClientError> {
        let path = format!("/api/v1/runs/{}/replay", seg(run_id));
        Ok(self.call(Method::POST, &path, &[], None).await?.data)
    }

    pub async fn run(&self, run_id: &str, wait_secs: Option<f64>) -> Result<RunView, ClientError> {
        let mut query = vec![];
        if let Some(w) = wait_secs {
            query.push(("wait", format!("{w:.3}")));
        }
        let path = format!("/api/v1/runs/{}", seg(run_id));
        Ok(self.call(Method::GET, &path, &query, None).await?.data)
    }

    pub async fn runs(&self, f: &RunFilter) -> Result<Answer<Vec<RunView>>, ClientError> {
        let mut query = vec![];
        for (k, v) in [
            ("workflowId", &f.workflow_id),
            ("status", &f.status),
            ("triggerType", &f.trigger_type),
            ("cursor", &f.cursor),
            ("parentRunId", &f.parent_run_id),
        ] {
            if let Some(v) = v {
                query.push((k, v.clone()));
            }
        }
        if let Some(l) = f.limit {
            query.push(("limit", l.to_string()));
        }
        self.call(Method::GET, "/api/v1/runs", &query, None).await
    }

    pub async fn cancel(&self, run_id: &str) -> Result<RunView, ClientError> {
        let path = format!("/api/v1/runs/{}/cancel", seg(run_id));
        Ok(self.call(Method::POST, &path, &[], None).await?.data)
    }

    pub async fn redrive(&self, run_id: &str) -> Result<RunView, ClientError> {
        let path = format!("/api/v1/runs/{}/redrive", seg(run_id));
        Ok(self.call(Method::POST, &path, &[], None).await?.data)
    }

    /// The approval inbox: pending approvals (or all of them).
    pub async fn approvals(&self, all: bool) -> Result<Vec<Value>, ClientError> {
        let query = vec![
            ("status", if all { "all" } else { "pending" }.to_string()),
            ("limit", "100".to_string()),
        ];
        Ok(self
            .call(Method::GET, "/api/v1/approvals", &query, None)
            .await?
            .data)
    }

    /// Approve or reject a run's waiting approval step, as this key.
    pub async fn decide(
        &self,
        run_id: &str,
        step_id: &str,
        decision: &str,
        comment: Option<&str>,
    ) -> Result<Value, ClientError> {
        let path = format!(
            "/api/v1/runs/{}/steps/{}/decision",
            seg(run_id),
            seg(step_id)
        );
        let body = serde_json::json!({"decision": decision, "comment": comment});
        Ok(self.call(Method::POST, &path, &[], Some(&body)).await?.data)
    }

    pub async fn apply(&self, definition: &Value) -> Result<ApplyResponse, ClientError> {
        Ok(self
            .call(Method::POST, "/api/v1/workflows", &[], Some(definition))
            .await?
            .data)
    }

    /// Every workflow, following the cursor page by page.
    pub async fn workflows(&self) -> Result<Vec<WorkflowView>, ClientError> {
        let mut all = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "100".to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page: Answer<Vec<WorkflowView>> = self
                .call(Method::GET, "/api/v1/workflows", &query, None)
                .await?;
            all.extend(page.data);
            match page.meta {
                Some(ListMeta {
                    cursor: Some(c),
                    has_more: true,
                }) => cursor = Some(c),
                _ => return Ok(all),
            }
        }
    }

    pub async fn workflow(&self, id: &str) -> Result<WorkflowView, ClientError> {
        let path = format!("/api/v1/workflows/{}", seg(id));
        Ok(self.call(Method::GET, &path, &[], None).await?.data)
    }

    /// `activate` or `pause`.
    pub async fn set_workflow_status(
        &self,
        id: &str,
        action: &str,
    ) -> Result<WorkflowView, ClientError> {
        let path = format!("/api/v1/workflows/{}/{action}", seg(id));
        Ok(self.call(Method::POST, &path, &[], None).await?.data)
    }

    pub async fn archive_workflow(&self, id: &str) -> Result<WorkflowView, ClientError> {
        let path = format!("/api/v1/workflows/{}", seg(id));
        Ok(self.call(Method::DELETE, &path, &[], None).await?.data)
    }

    /// A one-time dashboard login link (`path`, `expiresAt`).
    pub async fn ui_link(&self) -> Result<Value, ClientError> {
        Ok(self
            .call(Method::POST, "/api/v1/ui-links", &[], None)
            .await?
            .data)
    }

    /// The headers that sign `body` as a delivery to the workflow's webhook.
    pub async fn sign_test_delivery(
        &self,
        workflow_id: &str,
        body: &str,
    ) -> Result<Value, ClientError> {
        let path = format!("/api/v1/workflows/{}/test-delivery", seg(workflow_id));
        let req = serde_json::json!({ "body": body });
        Ok(self.call(Method::POST, &path, &[], Some(&req)).await?.data)
    }

    /// Post `body` to a webhook path as a provider would (no API key).
    pub async fn deliver(
        &self,
        path: &str,
        body: &str,
        headers: &[(String, String)],
    ) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    pub async fn create_connection(&self, body: &Value) -> Result<ConnectionView, ClientError> {
        Ok(self
            .call(Method::POST, "/api/v1/connections", &[], Some(body))
            .await?
            .data)
    }

    pub async fn connections(&self) -> Result<Vec<ConnectionView>, ClientError> {
        Ok(self
            .call(Method::GET, "/api/v1/connections", &[], None)
            .await?
            .data)
    }

    pub async fn delete_connection(&self, id: &str, force: bool) -> Result<(), ClientError> {
        let path = format!("/api/v1/connections/{}", seg(id));
        let query = if force {
            vec![("force", "true".to_string())]
        } else {
            vec![]
        };
        let _: Answer<Value> = self.call(Method::DELETE, &path, &query, None).await?;
        Ok(())
    }

    /// Outbound notification endpoints and deliveries (untyped: the CLI prints them).
    pub async fn create_endpoint(&self, body: &Value) -> Result<Value, ClientError> {
        let path = "/api/v1/webhook-endpoints";
        Ok(self.call(Method::POST, path, &[], Some(body)).await?.data)
    }

    pub async fn endpoints(&self) -> Result<Vec<Value>, ClientError> {
        let path = "/api/v1/webhook-endpoints";
        Ok(self.call(Method::GET, path, &[], None).await?.data)
    }

    pub async fn delete_endpoint(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/api/v1/webhook-endpoints/{}", seg(id));
        Ok(self.call(Method::DELETE, &path, &[], None).await?.data)
    }

    pub async fn enable_endpoint(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/api/v1/webhook-endpoints/{}/enable", seg(id));
        Ok(self.call(Method::POST, &path, &[], None).await?.data)
    }

    pub async fn endpoint_deliveries(
        &self,
        id: &str,
        limit: usize,
    ) -> Result<Vec<Value>, ClientError> {
        let path = format!("/api/v1/webhook-endpoints/{}/deliveries", seg(id));
        let query = [("limit", limit.to_string())];
        Ok(self.call(Method::GET, &path, &query, None).await?.data)
    }

    pub async fn redeliver(&self, delivery_id: &str) -> Result<Value, ClientError> {
        let path = format!("/api/v1/deliveries/{}/redeliver", seg(delivery_id));
        Ok(self.call(Method::POST, &path, &[], None).await?.data)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer<T>, ClientError> {
        self.call_with(method, path, query, body, None).await
    }

    async fn call_with<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer<T>, ClientError> {
        let url = format!("{}{}", self.base, path);
        tracing::debug!(%method, path, "API request");
        let mut req = self
            .http
            .request(method, &url)
            .header("x-api-key", &self.key);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            let cause = root_cause(&e);
            let reason = if self.base.starts_with("https://")
                && (cause.contains("InvalidContentType")
                    || cause.contains("corrupt message")
                    || cause.contains("wrong version number"))
            {
                format!(
                    "it does not answer TLS; flowctl serve speaks plain HTTP (use {} unless a TLS proxy is in front)",
                    self.base.replacen("https://", "http://", 1)
                )
            } else {
                cause
            };
            ClientError::Unreachable {
                url: self.base.clone(),
                reason,
            }
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if status.is_client_error() || status.is_server_error() {
            return Err(self.failure(status, headers, text));
        }
        #[derive(serde::Deserialize)]
        struct Envelope<T> {
            data: T,
            #[serde(default)]
            meta: Option<ListMeta>,
        }
        let env: Envelope<T> = serde_json::from_str(&text).map_err(|e| {
            if serde_json::from_str::<Value>(&text).is_ok_and(|v| v.get("data").is_some()) {
                ClientError::Decode(format!("{e} (while reading {path})"))
            } else {
                ClientError::Decode(self.not_flowctl(status))
            }
        })?;
        Ok(Answer {
            status,
            headers,
            data: env.data,
            meta: env.meta,
        })
    }

    /// An answer without flowctl's envelope: the URL points at another service.
    fn not_flowctl(&self, status: StatusCode) -> String {
        format!(
            "{} answered {status} without flowctl's JSON envelope: it does not look like a flowctl server (check --url / FLOWCTL_URL; `flowctl serve` prints its address)",
            self.base
        )
    }

    fn failure(&self, status: StatusCode, headers: HeaderMap, text: String) -> ClientError {
        let envelope: Option<ErrorEnvelope> = serde_json::from_str(&text).ok();
        if envelope.is_none() {
            return ClientError::Decode(self.not_flowctl(status));
        }
        if status.is_server_error() {
            return ClientError::Server {
                status: status.as_u16(),
                message: envelope.map(|e| e.error.message).unwrap_or(text),
            };
        }
        let error = envelope.map(|e| e.error).unwrap_or(ErrorBody {
            code: status.as_str().into(),
            message: text,
            details: None,
            decision: None,
        });
        let hint = (error.code == codes::UNAUTHORIZED).then(|| {
            format!(
                "the key used came from {}, and {} does not accept it; on that server's host, \
                 create one with `flowctl keys create --name NAME --scopes admin --db DB` and \
                 pass it with --api-key or FLOWCTL_API_KEY",
                self.key_origin, self.base
            )
        });
        ClientError::Rejected {
            status: status.as_u16(),
            error,
            headers: Box::new(headers),
            hint,
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::seg("wf_a"), "wf_a");
        assert_eq!(super::seg("a/b c?"), "a%2Fb%20c%3F");
    }
}

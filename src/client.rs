//! Typed client for the flowctl API; the one place that decodes error envelopes.

use crate::api::{ErrorBody, ErrorEnvelope};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the flowctl server at {url}: {reason} (start it with `flowctl serve`, or set --url / FLOWCTL_URL)"
    )]
    Unreachable { url: String, reason: String },
    /// A 4xx answer: the request was rejected.
    #[error("{}: {}", .error.code, .error.message)]
    Rejected { status: u16, error: ErrorBody },
    /// A 5xx answer.
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub data: Value,
    pub meta: Option<Value>,
}

#[derive(Clone)]
pub struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, key: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Response, ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        let url = format!("{}{}", self.base, path);
        tracing::debug!(%method, path, "API request");
        let mut req = self
            .http
            .request(method, &url)
            .header("x-api-key", &self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if status.is_client_error() || status.is_server_error() {
            let envelope: Option<ErrorEnvelope> = serde_json::from_str(&text).ok();
            return Err(match (status.is_server_error(), envelope) {
                (false, Some(env)) => ClientError::Rejected {
                    status: status.as_u16(),
                    error: env.error,
                },
                (false, None) => ClientError::Rejected {
                    status: status.as_u16(),
                    error: ErrorBody {
                        code: status.as_str().into(),
                        message: text,
                        details: None,
                    },
                },
                (true, env) => ClientError::Server {
                    status: status.as_u16(),
                    message: env.map(|e| e.error.message).unwrap_or(text),
                },
            });
        }
        let mut body: Value =
            serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Response {
            status,
            headers,
            data: body.get_mut("data").map(Value::take).unwrap_or(Value::Null),
            meta: body.get_mut("meta").map(Value::take),
        })
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

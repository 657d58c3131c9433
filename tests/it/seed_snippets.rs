//! The seed page's client snippets, run as written (only the workflow id, the
//! key and the port filled in) with Python's requests and Node's fetch, plus
//! its `waitForCompletion` polling loop.

use crate::common::*;
use std::process::Command;

const PYTHON: &str = r#"
import os, requests
workflow_id = os.environ['WORKFLOW_ID']
api_key = os.environ['API_KEY']
response = requests.post(
    f'http://localhost:{PORT}/api/v1/workflows/{workflow_id}/run',
    headers={
        'x-api-key': api_key,
        'Content-Type': 'application/json'
    },
    json={
        'input': {
            'customerId': 'cus_xxx',
            'amount': 9900
        }
    }
)

data = response.json()['data']
print(f"Run ID: {data['runId']}")
"#;

const NODE: &str = r#"
const workflowId = process.env.WORKFLOW_ID;
const API_KEY = process.env.API_KEY;
async function main() {
const response = await fetch(
  `http://localhost:${process.env.PORT}/api/v1/workflows/${workflowId}/run`,
  {
    method: 'POST',
    headers: {
      'x-api-key': process.env.API_KEY,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      input: {
        customerId: 'cus_xxx',
        amount: 9900
      }
    })
  }
);

const { data } = await response.json();
console.log('Run ID:', data.runId);

async function waitForCompletion(runId, maxWait = 60000) {
  const start = Date.now();

  while (Date.now() - start < maxWait) {
    const response = await fetch(
      `http://localhost:${process.env.PORT}/api/v1/runs/${runId}`,
      { headers: { 'x-api-key': API_KEY } }
    );

    const { data } = await response.json();

    if (data.status === 'completed') {
      return data.output;
    }

    if (data.status === 'failed') {
      throw new Error(data.error?.message || 'Workflow failed');
    }

    // Wait 1 second before polling again
    await new Promise(r => setTimeout(r, 1000));
  }

  throw new Error('Timeout waiting for workflow');
}
console.log('Output:', JSON.stringify(await waitForCompletion(data.runId)));
}
main();
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_and_node_snippets_work_unchanged() {
    if !have_python_module("requests") || !have("node", Command::new("node").arg("--version")) {
        return;
    }
    let s = Server::start();
    s.apply(create_invoice_workflow()).await;
    let port = s.url.rsplit(':').next().unwrap().to_string();
    let python = PYTHON.replace("{PORT}", &port);
    let out = Command::new("python3")
        .args(["-c", &python])
        .env("WORKFLOW_ID", "wf_create_invoice")
        .env("API_KEY", &s.key)
        .output()
        .expect("python3 with requests (.ci/run installs it)");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Run ID: run_"), "{}", stdout(&out));

    let out = Command::new("node")
        .args(["-e", NODE])
        .env("WORKFLOW_ID", "wf_create_invoice")
        .env("API_KEY", &s.key)
        .env("PORT", &port)
        .output()
        .expect("node");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Run ID: run_"), "{text}");
    assert!(
        text.contains(r#"Output: {"customer":"cus_xxx","amount":9900,"currency":"usd"}"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crontab_curl_line_works() {
    if !have("curl", Command::new("curl").arg("--version")) {
        return;
    }
    let s = Server::start();
    s.apply(serde_json::json!({"name": "Daily Report", "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"ok": true}}}]}))
        .await;
    // The seed's scheduler line: `curl -X POST … -H "x-api-key: $API_KEY" -d '{"input":{}}'`
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            &format!("{}/api/v1/workflows/wf_daily_report/run", s.url),
        ])
        .args([
            "-H",
            &format!("x-api-key: {}", s.key),
            "-d",
            r#"{"input":{}}"#,
        ])
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["data"]["status"], "pending");
}

// Browser tests of the dashboard: a real `flowctl serve` (port 0, temp
// store) driven through Debian's Chromium with playwright-core (no browser
// download) and checked with axe-core. Screenshots of every page go to
// target/screenshots/. Outside CI a missing Chromium or flowctl binary skips
// the tests with a message; with CI=true it fails them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const BIN = process.env.FLOWCTL_BIN || join(repo, "target/debug/flowctl");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = join(repo, "target/screenshots");
const require = createRequire(import.meta.url);

const missing = [
  [existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (apt-get install chromium)`],
  [existsSync(BIN), `the flowctl binary at ${BIN} (cargo build)`],
  [existsSync(join(here, "node_modules/playwright-core")), "playwright-core (npm ci --prefix tests/browser)"],
].filter(([ok]) => !ok).map(([, what]) => what);
if (missing.length && process.env.CI === "true") {
  throw new Error(`browser tests need ${missing.join(", ")}`);
}
const skip = missing.length ? `missing ${missing.join(", ")}` : false;
if (skip) console.log(`# skipping dashboard browser tests: ${skip}`);

let server, home, url, adminKey, readKey, browser, context, page, evil;
const consoleErrors = [];
const runs = {};

async function api(method, path, body, key = adminKey) {
  const resp = await fetch(url + path, {
    method,
    headers: { "x-api-key": key, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: resp.status, body: await resp.json() };
}

async function trigger(workflow, input, extra = {}) {
  const r = await api("POST", `/api/v1/workflows/${workflow}/run`, { input, ...extra });
  assert.ok(r.status === 202, JSON.stringify(r.body));
  return r.body.data.runId;
}

async function waitFinished(id) {
  const r = await api("GET", `/api/v1/runs/${id}?wait=20`);
  return r.body.data;
}

function startServer() {
  home = mkdtempSync(join(tmpdir(), "flowctl-ui-"));
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, "config"), XDG_DATA_HOME: join(home, "data") };
  delete env.FLOWCTL_API_KEY; delete env.FLOWCTL_URL; delete env.RUST_LOG;
  server = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--db", join(home, "f.db")], { env, stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((ok, fail) => {
    let buf = "";
    const timer = setTimeout(() => fail(new Error("server did not start:\n" + buf)), 30000);
    server.stderr.on("data", (d) => {
      buf += d;
      const m = buf.match(/flowctl listening on (\S+)/);
      if (m && !url) {
        url = m[1];
        clearTimeout(timer);
        ok();
      }
    });
    server.on("exit", (code) => fail(new Error(`server exited ${code}:\n${buf}`)));
  }).then(() => {
    adminKey = JSON.parse(readFileSync(join(home, "config/flowctl/credentials.json"), "utf8")).apiKey;
    const out = spawnSync(BIN, ["keys", "create", "--name", "read-only", "--scopes", "runs:read", "--db", join(home, "f.db")], { env, encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    readKey = out.stdout.trim();
  });
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core on the current page: no serious or critical violation. */
async function axe(label) {
  // evaluate() is not subject to the page's CSP, unlike an injected <script>.
  await page.evaluate(readFileSync(require.resolve("axe-core/axe.min.js"), "utf8"));
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(" ")})`), [], `axe on ${label}`);
}

/** Drop console errors since `mark` that a deliberately refused request logged. */
function forgive(mark, status) {
  const kept = consoleErrors.slice(mark).filter((e) => !e.includes(`status of ${status}`));
  consoleErrors.splice(mark, consoleErrors.length - mark, ...kept);
}

async function statusText() {
  return (await page.locator(".run-status .badge").innerText()).replace(/^\W+/, "").trim();
}

before(async () => {
  if (skip) return;
  mkdirSync(SHOTS, { recursive: true });
  await startServer();
  for (const def of [
    { id: "wf_greet", name: "Greeting", steps: [
      { id: "hello", name: "Say hello", type: "transform", config: { mapping: { greeting: "Hello {{ input.name }}" } } },
      { id: "shout", type: "transform", config: { mapping: { loud: "{{ steps.hello.output.greeting | upcase }}" } } },
    ] },
    { id: "wf_price", name: "Price", steps: [
      { id: "calc", type: "transform", config: { mapping: { double: "{{ input.price | times: 2 }}" } } },
      { id: "after", type: "transform", config: { mapping: { x: "1" } } },
    ] },
    { id: "wf_nightly", name: "Nightly report", trigger: { type: "schedule", cron: "0 3 1 1 *" }, steps: [
      { id: "report", type: "transform", config: { mapping: { ok: "yes" } } },
    ] },
    { id: "wf_slow", name: "Slow", steps: [
      { id: "start", type: "transform", config: { mapping: { ok: "yes" } } },
      { id: "nap", name: "Long nap", type: "wait", config: { durationMs: 120000 } },
    ] },
  ]) {
    const r = await api("POST", "/api/v1/workflows", def);
    assert.ok(r.status < 300, JSON.stringify(r.body));
  }
  // A second version, so the workflow page has a diff to show.
  await api("POST", "/api/v1/workflows", { id: "wf_greet", name: "Greeting", steps: [
    { id: "hello", name: "Say hello", type: "transform", config: { mapping: { greeting: "Hello, {{ input.name }}!" } } },
    { id: "shout", type: "transform", config: { mapping: { loud: "{{ steps.hello.output.greeting | upcase }}" } } },
  ] });
  runs.ok = await trigger("wf_greet", { name: "Ada" }, { idempotencyKey: "order-42" });
  runs.failed = await trigger("wf_price", { price: "abc" });
  assert.equal((await waitFinished(runs.ok)).status, "completed");
  assert.equal((await waitFinished(runs.failed)).status, "failed");

  const { chromium } = await import("playwright-core");
  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "flowctl-chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-quic", "--no-first-run"],
    viewport: { width: 1280, height: 900 },
    timezoneId: "UTC",
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(5000);
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`); });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
});

after(async () => {
  await context?.close();
  evil?.close();
  server?.kill("SIGTERM");
  if (home) rmSync(home, { recursive: true, force: true });
});

test("log in with a pasted API key (a bad key is refused)", { skip }, async () => {
  await page.goto(url + "/");
  assert.match(page.url(), /\/ui\/login/);
  await shot("login");
  const mark = consoleErrors.length;
  await page.getByLabel("API key").fill("wfk_not_a_real_key");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: "Invalid or revoked API key" }).waitFor();
  forgive(mark, 401);
  await page.getByLabel("API key").fill(adminKey);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/ui\/runs$/);
  const cookies = await context.cookies(url);
  const session = cookies.find((c) => c.name === "flowctl_session");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
});

test("the runs page shows a completed and a failed run", { skip }, async () => {
  await page.goto(url + "/ui/runs");
  const ok = page.locator("tr", { hasText: runs.ok });
  const failed = page.locator("tr", { hasText: runs.failed });
  assert.match(await ok.innerText(), /completed/);
  assert.match(await failed.innerText(), /failed/);
  assert.match(await failed.innerText(), /STEP_ERROR/);
  await shot("runs");
  await axe("runs page");
});

test("filters and search are links", { skip }, async () => {
  await page.goto(url + "/ui/runs");
  await page.getByLabel("Status").selectOption("failed");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/status=failed/);
  assert.equal(await page.locator("tbody tr").count(), 1);
  assert.match(await page.locator("tbody").innerText(), new RegExp(runs.failed));
  await shot("runs-filtered");
  await page.goto(url + "/ui/runs");
  await page.getByLabel("Run id or idempotency key").fill("order-42");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/q=order-42/);
  assert.equal(await page.locator("tbody tr").count(), 1);
  assert.match(await page.locator("tbody").innerText(), new RegExp(runs.ok));
  await page.goto(url + `/ui/runs?workflowId=wf_price`);
  assert.equal(await page.locator("tbody tr").count(), 1);
});

test("a run page shows each step's output, and a failed run its error", { skip }, async () => {
  await page.goto(url + "/ui/runs");
  await page.getByRole("link", { name: runs.ok }).click();
  await page.waitForURL(new RegExp(`/ui/runs/${runs.ok}$`));
  assert.equal(await statusText(), "completed");
  const hello = page.locator("#step-hello");
  assert.match(await hello.innerText(), /Say hello/);
  assert.match(await hello.locator("pre").innerText(), /"greeting": "Hello, Ada!"/);
  assert.match(await page.locator("#step-shout pre").innerText(), /"loud": "HELLO, ADA!"/);
  assert.equal(await page.locator("svg.timeline .bar").count(), 2);
  await shot("run-completed");
  await axe("run page");
  await page.goto(url + `/ui/runs/${runs.failed}`);
  assert.equal(await statusText(), "failed");
  assert.match(await page.locator(".run-error").innerText(), /STEP_ERROR/);
  assert.match(await page.locator("#step-calc").innerText(), /TEMPLATE_ERROR/);
  assert.match(await page.locator("#step-after").innerText(), /skipped/);
  await shot("run-failed");
  await axe("failed run page");
});

test("Cancel stops a running run and the page shows it", { skip }, async () => {
  const id = await trigger("wf_slow", {});
  await page.goto(url + `/ui/runs/${id}`);
  // Live: the page follows the run from pending to running without a reload.
  await page.locator("#step-nap .badge", { hasText: "waiting" }).waitFor();
  await shot("run-live");
  // By keyboard: Tab reaches the button, its focus is visible, Enter presses it.
  let focused = "";
  for (let i = 0; i < 40 && focused !== "cancel-run"; i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement?.id || "");
  }
  assert.equal(focused, "cancel-run", "Cancel is reachable with Tab");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none", "focus is visible");
  await page.keyboard.press("Enter");
  await page.locator(".run-status .badge", { hasText: "cancelled" }).waitFor();
  assert.equal((await api("GET", `/api/v1/runs/${id}`)).body.data.status, "cancelled");
  assert.equal(await page.getByRole("button", { name: "Cancel" }).count(), 0);
});

test("the run page updates live when the run changes elsewhere", { skip }, async () => {
  const id = await trigger("wf_slow", {});
  await page.goto(url + `/ui/runs/${id}`);
  await page.evaluate(() => { window.notReloaded = true; });
  const cancel = await api("POST", `/api/v1/runs/${id}/cancel`);
  assert.equal(cancel.status, 200);
  const started = Date.now();
  await page.locator(".run-status .badge", { hasText: "cancelled" }).waitFor({ timeout: 5000 });
  assert.ok(Date.now() - started < 3000, "within the 2 s polling promise (+ slack)");
  assert.equal(await page.evaluate(() => window.notReloaded), true);
});

test("Replay starts a new run with the same input", { skip }, async () => {
  await page.goto(url + `/ui/runs/${runs.ok}`);
  await page.getByRole("button", { name: "Replay" }).click();
  await page.waitForURL((u) => /\/ui\/runs\/run_/.test(u.pathname) && !u.pathname.endsWith(runs.ok));
  const newId = page.url().split("/").pop();
  await page.locator(".run-status .badge", { hasText: "completed" }).waitFor();
  const replayed = (await api("GET", `/api/v1/runs/${newId}`)).body.data;
  assert.deepEqual(replayed.input, { name: "Ada" });
  assert.equal(replayed.workflowId, "wf_greet");
  assert.equal(replayed.triggerType, "replay");
  await shot("run-replayed");
  // The trigger-type filter finds exactly the replay.
  await page.goto(url + "/ui/runs");
  await page.getByLabel("Trigger type").selectOption("replay");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/triggerType=replay/);
  assert.equal(await page.locator("tbody tr").count(), 1);
  assert.match(await page.locator("tbody").innerText(), new RegExp(newId));
});

test("workflows and overview pages", { skip }, async () => {
  await page.goto(url + "/ui/workflows");
  assert.match(await page.locator("tr", { hasText: "Greeting" }).innerText(), /v2/);
  assert.match(await page.locator("tr", { hasText: "Nightly report" }).innerText(), /schedule \(cron 0 3 1 1 \*\)\s+\d{4}-01-01 03:00:00 UTC/);
  await shot("workflows");
  await page.getByRole("link", { name: "Greeting" }).click();
  await page.waitForURL(/\/ui\/workflows\/wf_greet$/);
  assert.match(await page.locator("#diff-title").innerText(), /v1 → v2/);
  assert.match(await page.locator("pre.diff .ins").first().innerText(), /^\+ .*Hello, /);
  await shot("workflow");
  await axe("workflow page");
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator(".run-status .badge", { hasText: "paused" }).waitFor();
  await page.getByRole("button", { name: "Activate" }).click();
  await page.locator(".run-status .badge", { hasText: "active" }).waitFor();
  await page.goto(url + "/ui/overview");
  const stats = await page.locator("ul.stats").innerText();
  assert.match(stats, /Completed\s+[1-9]/);
  assert.match(stats, /Failures \(failed or timed out\)\s+1/);
  assert.ok(await page.locator("svg.chart .bar").count() >= 2);
  await shot("overview");
  await axe("overview page");
});

test("a forged cross-site request is refused", { skip }, async () => {
  const id = await trigger("wf_slow", {});
  const mark = consoleErrors.length;
  // Another origin on the same host (same site, so even SameSite cookies go
  // along): only the Origin / Sec-Fetch-Site check and the token stop it.
  evil = createServer((req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><title>evil</title><form id="f" method="post" action="${url}/ui/runs/${id}/cancel">
      <input name="csrf" value="guess"></form><script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((ok) => evil.listen(0, "127.0.0.1", ok));
  const resp = page.waitForResponse((r) => r.url().endsWith(`/ui/runs/${id}/cancel`));
  await page.goto(`http://127.0.0.1:${evil.address().port}/`);
  assert.equal((await resp).status(), 403);
  await page.getByText("Cross-site request refused").waitFor();
  assert.notEqual((await api("GET", `/api/v1/runs/${id}`)).body.data.status, "cancelled");
  runs.slow = id;
  forgive(mark, 403);
});

test("a runs:read key sees no Cancel and the server refuses it", { skip }, async () => {
  await page.goto(url + "/ui/runs");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/ui\/login/);
  const afterLogout = await page.goto(url + "/ui/runs");
  assert.match(afterLogout.url(), /\/ui\/login/);
  await page.getByLabel("API key").fill(readKey);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/ui\/runs/);
  assert.equal(await page.getByRole("link", { name: "Workflows" }).count(), 0);
  await page.goto(url + `/ui/runs/${runs.slow}`);
  await page.locator(".run-status .badge").waitFor();
  assert.equal(await page.getByRole("button", { name: "Cancel" }).count(), 0);
  assert.equal(await page.getByRole("button", { name: "Replay" }).count(), 0);
  await shot("run-read-only");
  // The same request the button would send, with this session's valid token.
  const mark = consoleErrors.length;
  const status = await page.evaluate(async (id) => {
    const csrf = document.querySelector("form.logout input[name=csrf]").value;
    const r = await fetch(`/ui/runs/${id}/cancel`, { method: "POST", body: new URLSearchParams({ csrf }) });
    return r.status;
  }, runs.slow);
  assert.equal(status, 403);
  assert.equal((await api("POST", `/api/v1/runs/${runs.slow}/cancel`, undefined, readKey)).status, 403);
  assert.notEqual((await api("GET", `/api/v1/runs/${runs.slow}`)).body.data.status, "cancelled");
  forgive(mark, 403);
});

test("Run now on a schedule's page, its recent runs, and times in the schedule's zone", { skip }, async () => {
  const def = { id: "wf_berlin", name: "Berlin report",
    trigger: { type: "schedule", cron: "0 2 * * *", timezone: "Europe/Berlin", input: { recipient: "ops@example.com" } },
    inputSchema: { type: "object", properties: { format: { type: "string", default: "pdf" } } },
    steps: [{ id: "mail", type: "transform", config: { mapping: {
      to: "{{ input.recipient }}", format: "{{ input.format }}", manual: "{{ input.schedule.manual }}" } } }] };
  assert.ok((await api("POST", "/api/v1/workflows", def)).status < 300);
  // Log in as the admin again, with the one-time link of `flowctl open`.
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, "config"), XDG_DATA_HOME: join(home, "data") };
  delete env.FLOWCTL_API_KEY; delete env.FLOWCTL_URL; delete env.DISPLAY; delete env.WAYLAND_DISPLAY;
  const open = spawnSync(BIN, ["open", "--no-browser"], { env, encoding: "utf8" });
  assert.equal(open.status, 0, open.stderr);
  await page.goto(open.stdout.trim());
  await page.waitForURL(/\/ui\/runs$/);
  assert.equal(await page.getByRole("link", { name: "Workflows" }).count(), 1, "logged in with the admin key");
  await page.goto(url + "/ui/workflows/wf_berlin");
  const next = page.locator("dd time[data-tz]");
  assert.match(await next.innerText(), /^\d{4}-\d{2}-\d{2} 02:00:00 GMT\+\d \(Europe\/Berlin\)$/);
  assert.match(await next.getAttribute("title"), /UTC$/);
  const editor = page.locator("#run-input");
  const prefilled = JSON.parse(await editor.inputValue());
  assert.deepEqual(prefilled, { recipient: "ops@example.com", format: "pdf" });
  assert.equal(await page.locator("#recent-title + p", { hasText: "No runs yet" }).count(), 1);
  await axe("workflow page with Run now");
  await editor.fill(JSON.stringify({ recipient: "ceo@example.com" }));
  await page.getByRole("button", { name: "Run now" }).click();
  await page.waitForURL(/\/ui\/runs\/run_/);
  const id = page.url().split("/").pop();
  const run = await waitFinished(id);
  assert.equal(run.status, "completed");
  assert.deepEqual(run.output, { to: "ceo@example.com", format: "pdf", manual: true });
  await page.goto(url + "/ui/workflows/wf_berlin");
  assert.equal(await page.locator("table.recent-runs tbody tr").count(), 1);
  assert.match(await page.locator("table.recent-runs").innerText(), new RegExp(id));
  await shot("workflow-run-now");
});

test("the timeline's labels never overprint, long errors are clamped, waiting steps say when they resume", { skip }, async () => {
  // An upstream that answers with a whole HTML page.
  const html = "<!DOCTYPE HTML><html><head><title>500</title></head><body>" + "<p>Internal failure, details follow.</p>\n".repeat(40) + "</body></html>";
  const upstream = createServer((req, res) => { res.writeHead(500, { "content-type": "text/html" }); res.end(html); });
  await new Promise((ok) => upstream.listen(0, "127.0.0.1", ok));
  try {
    assert.ok((await api("POST", "/api/v1/workflows", { id: "wf_invoice", name: "Process order", steps: [
      { id: "create-invoice", name: "Create Invoice", type: "wait", config: { durationMs: 400 } },
      { id: "fetch", name: "Fetch the upstream", type: "action", action: "http.request", errorHandling: "fail",
        retryConfig: { maxAttempts: 1 }, config: { url: `http://127.0.0.1:${upstream.address().port}/fail` } },
    ] })).status < 300);
    const failed = await trigger("wf_invoice", {});
    assert.equal((await waitFinished(failed)).status, "failed");
    await page.goto(url + `/ui/runs/${failed}`);
    const overlaps = await page.evaluate(() => [...document.querySelectorAll("svg.timeline g.row")].map((g) => {
      const label = g.querySelector("text.label")?.getBBox();
      const status = g.querySelector("text.bar-text")?.getBBox();
      if (!label || !status) return false;
      return status.x < label.x + label.width && label.x < status.x + status.width;
    }));
    assert.deepEqual(overlaps, overlaps.map(() => false), "a status overprints its label");
    await shot("run-timeline");
    await page.goto(url + "/ui/runs?workflowId=wf_invoice");
    const cell = page.locator("td.error-cell").first();
    assert.ok((await cell.boundingBox()).height < 80, "the error cell is clamped");
    await cell.locator("summary").click();
    assert.ok((await cell.boundingBox()).height > 80, "the whole error opens");
    await shot("runs-clamped-error");
    await axe("runs page with a long error");

    const waiting = await trigger("wf_slow", {});
    await page.goto(url + `/ui/runs/${waiting}`);
    await page.locator("p.resumes time").waitFor();
    assert.match(await page.locator("p.resumes").innerText(), /^Resumes \d{4}-\d{2}-\d{2} /);
    const looks = await page.evaluate(() => ["pending", "waiting"].map((s) => {
      const b = document.createElement("span");
      b.className = `badge status-${s}`;
      document.body.appendChild(b);
      const st = getComputedStyle(b);
      const seen = `${st.color} ${st.borderStyle}`;
      b.remove();
      return seen;
    }));
    assert.notEqual(looks[0], looks[1], "pending and waiting look alike");
    await api("POST", `/api/v1/runs/${waiting}/cancel`);
  } finally {
    upstream.close();
  }
});

test("a run page shows the branch taken and why steps were skipped, and links parent and child runs", { skip }, async () => {
  for (const def of [
    { id: "wf_leaf", name: "Leaf", steps: [{ id: "echo", type: "transform", config: { mapping: { n: "{{ input.n }}" } } }] },
    { id: "wf_order", name: "Order", steps: [
      { id: "check-amount", type: "condition", config: {
        conditions: { left: "{{ input.amount }}", operator: "gt", right: "1000" }, then: ["approve"], else: ["send"] } },
      { id: "approve", type: "transform", config: { mapping: { approver: "finance@example.com" } } },
      { id: "send", type: "workflow", config: { workflowId: "wf_leaf", input: { n: "{{ input.amount }}" } } },
    ] },
  ]) {
    const r = await api("POST", "/api/v1/workflows", def);
    assert.ok(r.status < 300, JSON.stringify(r.body));
  }
  const id = await trigger("wf_order", { amount: 5 });
  assert.equal((await waitFinished(id)).status, "completed");
  await page.goto(url + `/ui/runs/${id}`);
  assert.equal(await page.locator("#parent-run").count(), 0, "a root has no parent");
  assert.equal(await page.locator("#step-check-amount .step-branch").innerText(), "Took branch else");
  assert.equal(await page.locator("#step-approve .step-skip").innerText(), "Skipped: check-amount took else");
  const tree = page.locator("#children ul.run-tree li");
  assert.equal(await tree.count(), 1);
  assert.match(await tree.innerText(), /^run_\S+ wf_leaf v1\s+\W*completed from step send$/);
  const child = await tree.locator("a").innerText();
  assert.equal(await page.locator("#step-send .step-child a").innerText(), child, "the step links its child run");
  await shot("run-children");
  await axe("run page with a branch and a child run");
  await tree.locator("a").click();
  await page.waitForURL(new RegExp(`/ui/runs/${child}$`));
  assert.equal(await page.locator("#parent-run").innerText(), `${id} (step send)`);
  assert.equal((await page.locator("#step-echo pre").innerText()).replace(/\s+/g, ""), '{"n":5}');
  await axe("child run page");
  await page.locator("#parent-run a", { hasText: "send" }).click();
  await page.waitForURL(new RegExp(`/ui/runs/${id}#step-send$`));
});

test("the approvals inbox approves a suspended run, and its page shows who decided", { skip }, async () => {
  const def = { id: "wf_refund", name: "Refund", steps: [
    { id: "ask", type: "approval", config: { approvers: ["finance@example.com"], reason: "Refund {{ input.amount }} EUR" } },
    { id: "refund", type: "transform", if: "{{ steps.ask.output.approved }}", config: { mapping: { refunded: "{{ input.amount }}" } } },
  ] };
  const r = await api("POST", "/api/v1/workflows", def);
  assert.ok(r.status < 300, JSON.stringify(r.body));
  const id = await trigger("wf_refund", { amount: 750 });
  for (let i = 0; i < 100; i++) {
    if ((await api("GET", `/api/v1/runs/${id}`)).body.data.status === "suspended") break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.equal((await api("GET", `/api/v1/runs/${id}`)).body.data.status, "suspended");
  await page.goto(url + "/ui/approvals");
  const item = page.locator("article.approval", { hasText: id });
  await item.locator(".reason", { hasText: "Refund 750 EUR" }).waitFor();
  await shot("approvals");
  await axe("approvals inbox");
  await item.getByLabel("Comment (optional)").fill("ok, goodwill");
  await item.getByRole("button", { name: "Approve" }).click();
  await page.waitForURL(/\/ui\/approvals$/);
  await page.getByText("No run waits for a decision.").waitFor();
  const run = await waitFinished(id);
  assert.equal(run.status, "completed");
  const ask = run.steps.find((s) => s.id === "ask");
  assert.equal(ask.output.approved, true);
  assert.equal(ask.output.comment, "ok, goodwill");
  await page.goto(url + `/ui/runs/${id}`);
  const waits = page.locator("section.waits");
  await waits.getByText("ok, goodwill").waitFor();
  await axe("run page with a decided approval");
});

test("no console errors (CSP violations included) on any page", { skip }, async () => {
  for (const path of ["/ui/runs", `/ui/runs/${runs.ok}`, "/ui/overview"]) {
    await page.goto(url + path);
    await page.waitForLoadState("networkidle");
  }
  assert.deepEqual(consoleErrors, []);
});

// Drives the dashboard in headless Chromium (playwright-core, Debian's
// chromium) against a running daemon; tests/web/dashboard_test.sh starts the
// daemon and passes what it needs in the environment. Exit 1 on a failure.
//
//   WEB_BASE        the daemon's origin (http://127.0.0.1:PORT)
//   WEB_TOKEN       API token to log in with ("" when the daemon has no login)
//   WEB_ARTIFACTS   where screenshots and figures go
//   WEB_MODE        "pages" (everything) or "perf" (overview render time only)
//   WEB_USER, WEB_KEY   session user and private key file (its .pub is pasted)
//   WEB_FORCE_HOT   shell command that makes the simulator report a hot GPU
//   WEB_ALERT_RULE  the rule name the hot GPU fires
//   WEB_OPENAPI_DOC optional, by hand: a file the page gets as the daemon's /openapi.json
import { createRequire } from "node:module";
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The packages are web/'s (npm ci there); this script runs from any directory.
const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web", "package.json"));
const { chromium } = require("playwright-core");
const axePath = require.resolve("axe-core/axe.min.js");

const env = (k, d) => process.env[k] ?? d;
const BASE = env("WEB_BASE");
const OUT = env("WEB_ARTIFACTS");
const MODE = env("WEB_MODE", "pages");
mkdirSync(OUT, { recursive: true });

const failures = [];
const figures = {};
const fail = (m) => {
  console.log(`FAIL: ${m}`);
  failures.push(m);
};
const note = (m) => console.log(`-- ${m}`);

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
// bypassCSP: axe-core is injected into the page by the test; the page's own CSP allows only its scripts.
const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true });
const page = await context.newPage();
const consoleErrors = [];
// A daemon without browser login answers the page's probe of /api/v1/whoami with 404, which Chromium logs.
const probe404 = (m) => env("WEB_NO_LOGIN", "0") === "1" && /404/.test(m.text()) && /\/api\/v1\/whoami$/.test(m.location().url ?? "");
page.on("console", (m) => {
  if (m.type() === "error" && !probe404(m)) consoleErrors.push(`${m.text()} (${m.location().url ?? ""})`);
});
page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));
page.on("dialog", (d) => void d.accept());
// Nothing from elsewhere at run time (no CDN, no fonts, no telemetry).
const foreign = new Set();
page.on("request", (r) => {
  const u = new URL(r.url());
  if (u.origin !== new URL(BASE).origin && u.protocol !== "data:" && u.protocol !== "blob:") foreign.add(u.origin);
});

async function checkConsole(where) {
  if (consoleErrors.length) fail(`console errors on ${where}: ${consoleErrors.join(" | ")}`);
  consoleErrors.length = 0;
}

async function axe(where) {
  await page.addScriptTag({ path: axePath });
  const r = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) fail(`axe on ${where}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")})`);
  const minor = r.violations.filter((v) => !bad.includes(v)).map((v) => `${v.impact} ${v.id}`);
  if (minor.length) note(`axe on ${where}, minor: ${minor.join(", ")}`);
}

// Loaded: nothing marked busy (the event stream keeps a request open for
// ever, so Playwright's "network idle" never comes).
async function settled() {
  await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"), null, { timeout: 10000 }).catch(() => {});
  await page.waitForTimeout(400);
}

async function visit(hash, heading, name) {
  await page.goto(`${BASE}/${hash}`);
  await page.locator("main h1", { hasText: heading }).waitFor({ timeout: 10000 });
  await settled();
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
  await axe(name);
  await checkConsole(name);
  note(`page ${name} loaded`);
}

async function login() {
  await page.goto(`${BASE}/`);
  const token = page.locator("#token");
  const main = page.locator("main h1", { hasText: "Overview" });
  await Promise.race([token.waitFor({ timeout: 10000 }), main.waitFor({ timeout: 10000 })]);
  if (await token.count()) {
    await page.screenshot({ path: join(OUT, "login.png") });
    await axe("login");
    await token.fill("wrong-token");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.locator("[role=alert]").waitFor({ timeout: 5000 });
    consoleErrors.length = 0; // the 401 of a wrong token is reported by Chromium as a failed load, on purpose
    await token.fill(env("WEB_TOKEN", ""));
    await page.getByRole("button", { name: "Log in" }).click();
    await main.waitFor({ timeout: 10000 });
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + location.href + document.cookie);
    if (stored.includes(env("WEB_TOKEN", "\u0000"))) fail("the token is visible to the page's storage, URL or document.cookie");
    note("logged in with the token (cookie)");
  } else {
    note("no login on this daemon (whoami absent or --auth none)");
  }
}

async function live() {
  return (await page.locator(".stream").textContent())?.trim() === "live";
}

if (MODE === "contract") {
  // The page against the login and event-stream contract (session5.md), with
  // those three routes answered here and every other request going to the real
  // daemon: for a daemon that has neither yet. The daemon's own are tested by
  // "pages" mode once it has them.
  let loggedIn = false;
  let csrfOnLogin = "";
  let streamUrl = "";
  await page.route("**/api/v1/whoami", (r) =>
    loggedIn ? r.fulfill({ status: 200, contentType: "application/json", body: '{"role":"viewer","via":"cookie"}' })
             : r.fulfill({ status: 401, contentType: "application/json", body: '{"error":{"kind":"unauthorized","message":"log in"}}' }));
  await page.route("**/api/v1/login", (r) => {
    const body = JSON.parse(r.request().postData() ?? "{}");
    csrfOnLogin = r.request().headers()["x-sandman-csrf"] ?? "";
    if (body.token !== "good-token") {
      return r.fulfill({ status: 401, contentType: "application/json", body: '{"error":{"kind":"unauthorized","message":"wrong token"}}' });
    }
    loggedIn = true;
    return r.fulfill({ status: 204, headers: { "Set-Cookie": "sandman_session=opaque; HttpOnly; SameSite=Strict; Path=/" } });
  });
  const alert = { id: 9001, rule: "ContractHot", state: "firing", severity: "critical", summary: "GPU 3 at 95 C",
    labels: { gpu: "3" }, fired_at: new Date().toISOString(), pending_at: null, resolved_at: null, acked_at: null, acked_by: null, value: 95 };
  await page.route("**/api/v1/events/stream*", (r) => {
    streamUrl = r.request().url();
    r.fulfill({ status: 200, contentType: "text/event-stream",
      body: `retry: 60000\n\n: keep-alive\n\nid: 7\nevent: alert\ndata: ${JSON.stringify({ action: "firing", alert })}\n\n` });
  });
  await page.goto(`${BASE}/`);
  await page.locator("#token").waitFor({ timeout: 10000 });
  await axe("login");
  await page.screenshot({ path: join(OUT, "login.png") });
  await page.locator("#token").fill("bad");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("[role=alert]", { hasText: "wrong token" }).waitFor({ timeout: 5000 });
  consoleErrors.length = 0; // Chromium logs the 401 of the wrong token and of the first whoami
  await page.locator("#token").fill("good-token");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("main h1", { hasText: "Overview" }).waitFor({ timeout: 10000 });
  if (csrfOnLogin !== "1") fail("POST /api/v1/login carried no X-Sandman-CSRF: 1");
  const leaked = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + location.href);
  if (leaked.includes("good-token")) fail("the token is kept in storage or the URL");
  try {
    await page.locator(".alert-list li", { hasText: "ContractHot" }).waitFor({ timeout: 5000 });
    note("an alert event on the stream shows on the open overview");
  } catch {
    fail("the alert event from the stream did not show on the overview");
  }
  if (streamUrl.includes("token")) fail(`the stream URL carries a token: ${streamUrl}`);
  if ((await page.locator(".who").textContent()) !== "viewer") fail("the role from whoami is not shown");
  await page.goto(`${BASE}/#/sessions`);
  await page.locator("main h1", { hasText: "Sessions" }).waitFor();
  if (await page.getByRole("button", { name: "Create session" }).count()) fail("a viewer is offered Create session");
  await page.screenshot({ path: join(OUT, "contract-viewer-sessions.png"), fullPage: true });
  await checkConsole("contract");
  note("login contract: wrong token refused on the page, right one logs in, CSRF header sent, token kept nowhere; viewer sees no write button");
} else if (MODE === "perf") {
  await login();
  await page.reload();
  await page.waitForFunction(() => performance.getEntriesByName("sandman:overview-rendered").length > 0, null, { timeout: 30000 });
  const t = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    return {
      rendered_ms: performance.getEntriesByName("sandman:overview-rendered")[0].startTime,
      dom_content_loaded_ms: nav.domContentLoadedEventEnd,
      gpu_cards: document.querySelectorAll(".gpu-card").length,
      slots: document.querySelectorAll(".migbar .slot").length,
    };
  });
  figures.overview = t;
  await page.screenshot({ path: join(OUT, "overview-64x7.png"), fullPage: true });
  await checkConsole("overview 64x7");
  note(`overview with ${t.gpu_cards} GPUs, ${t.slots} slots rendered at ${t.rendered_ms.toFixed(0)} ms after navigation start`);
  const want = Number(env("WEB_WANT_GPUS", "0"));
  if (want && t.gpu_cards !== want) fail(`overview shows ${t.gpu_cards} GPUs, expected ${want}`);
} else {
  await login();
  // JavaScript shipped for the first page, as the browser received it (gzip).
  await page.reload();
  await page.locator("main h1", { hasText: "Overview" }).waitFor();
  await settled();
  const js = await page.evaluate(() =>
    performance.getEntriesByType("resource").filter((r) => r.name.endsWith(".js")).map((r) => ({ url: r.name, transfer_bytes: r.encodedBodySize, decoded_bytes: r.decodedBodySize })),
  );
  figures.first_page = { js, js_gzip_bytes: js.reduce((a, r) => a + r.transfer_bytes, 0), js_bytes: js.reduce((a, r) => a + r.decoded_bytes, 0) };
  note(`first page: ${js.length} scripts, ${figures.first_page.js_gzip_bytes} B gzipped (${figures.first_page.js_bytes} B unpacked)`);
  await checkConsole("first load");

  await visit("#/", "Overview", "overview");
  await page.emulateMedia({ colorScheme: "dark" });
  await visit("#/", "Overview", "overview-dark");
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 2560, height: 1440 });
  await visit("#/", "Overview", "overview-wall");
  await page.setViewportSize({ width: 1440, height: 900 });
  const firstGpu = await page.locator(".gpu-name").first().getAttribute("href");
  await visit(firstGpu, "GPU", "gpu-detail");
  await page.getByRole("button", { name: "6 h" }).click();
  if ((await page.getByRole("button", { name: "6 h" }).getAttribute("aria-pressed")) !== "true") fail("the 6 h range is not selected");
  // The charts are drawn anew when the 6 h data arrives: drag across the new one.
  await settled();
  const over = page.locator(".u-over").first();
  let zoomed = false;
  for (let i = 0; i < 3 && !zoomed; i++) {
    const box = await over.boundingBox({ timeout: 5000 }).catch(() => null);
    if (!box) continue;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    zoomed = await page.getByText("Zoomed:").waitFor({ timeout: 3000 }).then(() => true, () => false);
  }
  if (zoomed) note("GPU detail: 6 h range, then a drag zooms in");
  else fail("dragging across a chart did not zoom");
  await checkConsole("gpu detail range");
  await visit("#/alerts", "Alerts", "alerts");
  await visit("#/cost", "Cost", "cost");
  await visit("#/sessions", "Sessions", "sessions");

  // Keyboard: the navigation is reachable and works by Tab and Enter.
  await page.goto(`${BASE}/#/`);
  await page.locator("main h1", { hasText: "Overview" }).waitFor();
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.textContent?.startsWith("Sessions") ?? false);
  }
  if (!reached) fail("the Sessions link is not reachable by Tab");
  await page.keyboard.press("Enter");
  await page.locator("main h1", { hasText: "Sessions" }).waitFor({ timeout: 5000 });
  note("keyboard: Tab to Sessions, Enter opens it");

  // Create a session from the page, log in with the ssh command it shows, delete it.
  const user = env("WEB_USER");
  const key = env("WEB_KEY");
  await page.getByLabel("User", { exact: true }).first().fill(user);
  const picker = page.getByTestId("profile-picker");
  // What fits now comes from /gpus/available once the form is shown.
  await picker.locator("option[value^='mig:']").first().waitFor({ state: "attached", timeout: 10000 }).catch(() => {});
  const options = await picker.locator("option:not([disabled])").evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
  const mig = options.find(([v]) => v.startsWith("mig:"));
  if (!mig) fail(`the profile picker offers no MIG profile that fits: ${JSON.stringify(options)}`);
  else note(`picker: ${options.map(([, t]) => t).join(" | ")}`);
  if (mig && !/\$\d/.test(mig[1])) fail(`the picker shows no price: ${mig[1]}`);
  if (mig) await picker.selectOption(mig[0]);
  await page.getByLabel("SSH public key").fill(readFileSync(`${key}.pub`, "utf8").trim());
  await page.getByRole("button", { name: "Create session" }).click();
  const created = page.locator(".created [data-testid=ssh-command]");
  await created.waitFor({ timeout: 60000 });
  const cmd = (await created.textContent()).trim();
  const sid = (await page.locator("#created-h").textContent()).match(/s-[0-9a-f]+/)?.[0];
  note(`created ${sid}; the page shows: ${cmd}`);
  await page.screenshot({ path: join(OUT, "session-created.png"), fullPage: true });
  const argv = cmd.split(/\s+/);
  if (argv[0] !== "ssh") fail(`not an ssh command: ${cmd}`);
  let out = "";
  for (let i = 0; i < 30 && !out.includes("hello-from-"); i++) {
    try {
      out = execFileSync("ssh", [...argv.slice(1), "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "echo hello-from-$(whoami)"],
        { encoding: "utf8", timeout: 15000, stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      await page.waitForTimeout(1000);
    }
  }
  if (out.trim() !== `hello-from-${user}`) fail(`ssh with the page's command did not log in (got '${out.trim()}')`);
  else note(`ssh logged in as ${user} with the page's command`);
  // A login through the gateway is recorded: the connection history shows it.
  execFileSync("ssh", ["-p", env("WEB_GATEWAY_PORT"), `${user}@127.0.0.1`, "-i", key, "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "true"],
    { timeout: 30000, stdio: ["ignore", "pipe", "pipe"] });
  const row = page.locator(`tr[data-session="${sid}"]`);
  await row.waitFor({ timeout: 10000 });
  await row.getByRole("button", { name: "Connections" }).click();
  await page.locator("caption", { hasText: `Connections of ${sid}` }).waitFor({ timeout: 5000 });
  await page.screenshot({ path: join(OUT, "session-connections.png"), fullPage: true });
  await row.getByRole("button", { name: `Delete ${sid}` }).click();
  await row.waitFor({ state: "detached", timeout: 30000 });
  note(`deleted ${sid} from the page`);
  writeFileSync(join(OUT, "session-id"), sid ?? "");
  await checkConsole("sessions (create, ssh, delete)");

  // Cost after that session: a budget set from the page, the spend by user as chart and table.
  await page.goto(`${BASE}/#/cost`);
  await page.locator("main h1", { hasText: "Cost" }).waitFor();
  await page.getByLabel("Scope").selectOption("user");
  await page.getByLabel("Name").fill(user);
  await page.getByLabel("USD per month").fill("25");
  await page.getByRole("button", { name: "Set budget" }).click();
  await page.locator("td", { hasText: `user:${user}` }).or(page.locator("td", { hasText: user })).first().waitFor({ timeout: 10000 })
    .catch(async () => {
      fail("the budget set from the page is not listed");
      await page.screenshot({ path: join(OUT, "failure-budget.png"), fullPage: true });
    });
  await page.getByLabel("Group by").selectOption("user");
  await page.locator("table td", { hasText: user }).first().waitFor({ timeout: 10000 })
    .catch(() => fail(`the cost by user does not list ${user}`));
  if (!(await page.locator("figure.chart canvas").count())) fail("no cost chart for the session's spend");
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(OUT, "cost-with-data.png"), fullPage: true });
  await axe("cost-with-data");
  await checkConsole("cost with data");
  note("cost: budget set from the page, spend by user charted and listed");

  // A forced temperature: the alert shows on the open page without a reload.
  await page.goto(`${BASE}/#/`);
  await page.locator("main h1", { hasText: "Overview" }).waitFor();
  await page.waitForTimeout(1500);
  const rule = env("WEB_ALERT_RULE");
  const isLive = await live();
  const t0 = Date.now();
  execSync(env("WEB_FORCE_HOT"), { stdio: "inherit" });
  if (isLive) {
    try {
      await page.locator(".alert-list li", { hasText: rule }).waitFor({ timeout: 10000 });
      const dt = (Date.now() - t0) / 1000;
      figures.live_alert_seconds = dt;
      note(`alert ${rule} on the open page ${dt.toFixed(2)} s after the temperature was forced, no reload`);
      if (dt > 3) fail(`the alert took ${dt.toFixed(2)} s to appear (over 3 s)`);
      await page.screenshot({ path: join(OUT, "overview-alert.png"), fullPage: true });
    } catch {
      fail(`alert ${rule} did not appear on the open page within 10 s`);
    }
  } else {
    note("SKIPPED: live alert without a reload (the daemon has no event stream: the page says 'not live')");
    figures.live_alert = "skipped: no event stream";
  }
  // Acknowledged from the Alerts page (after a reload where the page is not live).
  await page.goto(`${BASE}/#/alerts`);
  if (!isLive) await page.reload();
  const alertRow = page.locator(`tr[data-alert="${rule}"]`).first();
  for (let i = 0; i < 20 && !(await alertRow.count()); i++) {
    await page.waitForTimeout(500);
    if (!isLive) await page.reload();
  }
  try {
    await alertRow.getByRole("button", { name: /Acknowledge/ }).click({ timeout: 10000 });
    await alertRow.getByRole("button", { name: /Acknowledge/ }).waitFor({ state: "detached", timeout: 5000 });
    note(`alert ${rule} acknowledged from the page`);
    await page.screenshot({ path: join(OUT, "alerts-acked.png"), fullPage: true });
  } catch {
    fail(`alert ${rule} could not be acknowledged from the Alerts page`);
  }
  await checkConsole("alerts");

  // Nodes: the inventory, a node's detail, and maintenance from the page refusing a create.
  await visit("#/nodes", "Nodes", "nodes");
  const nodeRow = page.locator("tr[data-node]").first();
  await nodeRow.waitFor({ timeout: 10000 }).catch(() => fail("the Nodes page lists no node"));
  const nodeName = await nodeRow.getAttribute("data-node");
  // The list's own query parameters: a search that matches nothing, then the node's status.
  await page.getByRole("searchbox", { name: /^Search/ }).fill("no-such-node-xyz");
  await page.getByText("No node matches.").waitFor({ timeout: 5000 }).catch(() => fail("search did not filter the nodes"));
  await page.getByRole("searchbox", { name: /^Search/ }).fill("");
  await page.getByRole("combobox", { name: /^Status/ }).selectOption("maintenance");
  await page.getByText("No node matches.").waitFor({ timeout: 5000 }).catch(() => fail("the status filter did not filter the nodes"));
  await page.getByRole("combobox", { name: /^Status/ }).selectOption("");
  await nodeRow.getByRole("link").click();
  await page.locator("main h1", { hasText: `Node ${nodeName}` }).waitFor({ timeout: 10000 });
  await settled();
  const gpuLinks = await page.locator("main a[href^='#/gpus/']").count();
  if (!gpuLinks) fail("the node's detail links no GPU");
  await page.screenshot({ path: join(OUT, "node-detail.png"), fullPage: true });
  await axe("node-detail");
  await page.getByLabel("New status").selectOption("maintenance");
  await page.getByLabel("Reason").fill("web test: PSU swap");
  await page.getByRole("button", { name: "Set status" }).click();
  await page.getByTestId("node-refusal").waitFor({ timeout: 10000 })
    .then(() => note(`node ${nodeName} set to maintenance from the page; it says creates are refused`),
          () => fail("after maintenance, the node's page does not say creates are refused"));
  await page.screenshot({ path: join(OUT, "node-maintenance.png"), fullPage: true });
  await axe("node-maintenance");
  await page.emulateMedia({ colorScheme: "dark" });
  await page.screenshot({ path: join(OUT, "node-maintenance-dark.png"), fullPage: true });
  await axe("node-maintenance-dark");
  await page.emulateMedia({ colorScheme: "light" });
  await checkConsole("node maintenance");
  // A create from the Sessions page is now refused, with the node's reason.
  await page.goto(`${BASE}/#/sessions`);
  await page.locator("main h1", { hasText: "Sessions" }).waitFor();
  await page.getByTestId("create-closed").waitFor({ timeout: 10000 }).catch(() => fail("the create form does not say creates are refused"));
  await page.getByLabel("User", { exact: true }).first().fill(env("WEB_USER"));
  await page.getByRole("button", { name: "Create session" }).click();
  const refused = page.locator("form.create [role=alert]");
  await refused.waitFor({ timeout: 30000 }).catch(() => {});
  const refusedText = (await refused.textContent().catch(() => "")) ?? "";
  if (!/maintenance/.test(refusedText) || !refusedText.includes("web test: PSU swap")) fail(`a create in maintenance was not refused with the reason (got '${refusedText}')`);
  else note(`create refused in maintenance: ${refusedText.slice(0, 120)}`);
  // Chromium reports the 409 of the refused create as a failed load, on purpose.
  for (let i = consoleErrors.length - 1; i >= 0; i--) if (/409/.test(consoleErrors[i])) consoleErrors.splice(i, 1);
  await checkConsole("create refused in maintenance");
  await page.goto(`${BASE}/#/nodes`);
  await page.locator("[data-testid=nodes-closed]").waitFor({ timeout: 10000 }).catch(() => fail("the node list does not say the node takes no sessions"));
  await page.screenshot({ path: join(OUT, "nodes-maintenance.png"), fullPage: true });
  await page.setViewportSize({ width: 2560, height: 1440 });
  await page.screenshot({ path: join(OUT, "nodes-wall.png"), fullPage: true });
  await page.setViewportSize({ width: 1440, height: 900 });
  // A Kubernetes backend's nodes (their shape as its GET /gpu-nodes answers, answered here): in use / free
  // from the nodes' extended resources, the product as the model, a node's resources on its page.
  {
    const res = (resource, alloc, used) => ({ resource, profile: resource.includes("mig-") ? resource.split("mig-")[1] : null,
      capacity: alloc, allocatable: alloc, in_use: used, free: alloc - used });
    const kube = (name, status, resources, extra = {}) => ({ id: name, name, backend: "kubernetes", cluster: "prod", description: `rack ${name}`,
      labels: {}, status, status_reason: status === "active" ? null : "disk swap", updated_at: null, updated_by: null,
      takes_sessions: status === "active", refusal: status === "active" ? null : `node ${name} is in ${status} (disk swap)`,
      gpu_count: 2, gpu_memory_mib: 81920, product: "NVIDIA-H100-80GB-HBM3", resources, ready: true, cordoned: false,
      sessions: [], running_sessions: 0, drain_complete: null, ...extra });
    const nodes = [kube("gpu-a", "active", [res("nvidia.com/mig-1g.10gb", 7, 3), res("nvidia.com/gpu", 1, 0)]),
                   kube("gpu-b", "maintenance", [res("nvidia.com/gpu", 2, 2)])];
    await page.route(/\/api\/v1\/gpu-nodes(\?.*)?$/, (r) => r.fulfill({ status: 200, contentType: "application/json",
      body: JSON.stringify({ nodes, count: 2, total: 2, backend: "kubernetes" }) }));
    await page.route(/\/api\/v1\/gpu-nodes\/gpu-b$/, (r) => r.fulfill({ status: 200, contentType: "application/json",
      body: JSON.stringify({ ...nodes[1], still_running: [{ id: "s-0123456789abcdef" }] }) }));
    // A reload, not a hash change: no answer the page asked for before the
    // routes were set can land after them.
    await page.goto(`${BASE}/#/nodes`);
    await page.reload();
    const rowA = page.locator('tr[data-node="gpu-a"]');
    await rowA.waitFor({ timeout: 20000 }).catch(() => fail("cluster nodes: gpu-a not listed"));
    const a = (await rowA.textContent({ timeout: 1000 }).catch(() => "")) ?? "";
    if (!a.includes("3 / 5") || !a.includes("H100-80GB-HBM3")) fail(`cluster nodes: gpu-a shows '${a}' (want 3 / 5 devices, the product)`);
    await page.locator("[data-testid=nodes-closed]", { hasText: "gpu-b" }).waitFor({ timeout: 5000 }).catch(() => fail("cluster nodes: gpu-b's maintenance is not said"));
    await page.screenshot({ path: join(OUT, "nodes-cluster.png"), fullPage: true });
    await page.locator('tr[data-node="gpu-b"] a').click();
    await page.locator("main h1", { hasText: "Node gpu-b" }).waitFor({ timeout: 10000 });
    await page.locator("td", { hasText: "nvidia.com/gpu" }).waitFor({ timeout: 5000 }).catch(() => fail("cluster nodes: gpu-b's resources are not listed"));
    if (!(await page.locator("td code", { hasText: "s-0123456789abcdef" }).count())) fail("cluster nodes: gpu-b's running session is not listed");
    await page.screenshot({ path: join(OUT, "node-cluster-detail.png"), fullPage: true });
    await axe("node-cluster-detail");
    await page.unroute(/\/api\/v1\/gpu-nodes\/gpu-b$/);
    await page.unroute(/\/api\/v1\/gpu-nodes(\?.*)?$/);
    await checkConsole("cluster nodes");
    note("Kubernetes-shaped nodes (answered by the test): listed with devices from their resources, maintenance said, resources and sessions on the node's page");
  }

  // The viewer checks below see the node in maintenance, then it is made active again.
  const reopen = async () => {
    await page.goto(`${BASE}/#/nodes/${encodeURIComponent(nodeName)}`);
    await page.locator("main h1", { hasText: `Node ${nodeName}` }).waitFor({ timeout: 10000 });
    await page.getByLabel("New status").selectOption("active");
    await page.getByRole("button", { name: "Set status" }).click();
    await page.getByTestId("node-takes").waitFor({ timeout: 10000 })
      .then(() => note(`node ${nodeName} active again from the page`), () => fail("setting the node active from the page did not take"));
    await checkConsole("node active again");
  };

  // API reference: the daemon's own document. Then the page's rendering against the sample document.
  // WEB_OPENAPI_DOC (by hand only): a file answered as the daemon's /openapi.json, to try the checks below
  // against a document before the daemon serves one.
  if (env("WEB_OPENAPI_DOC", "")) {
    const doc = readFileSync(env("WEB_OPENAPI_DOC"), "utf8");
    await page.route("**/openapi.json", (r) => r.fulfill({ status: 200, contentType: "application/json", body: doc }));
    note(`/openapi.json answered from ${env("WEB_OPENAPI_DOC")} (WEB_OPENAPI_DOC)`);
  }
  const real = await page.evaluate(async () => {
    const r = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    return { status: r.status, doc: r.ok ? await r.json() : null };
  });
  await page.goto(`${BASE}/#/api`);
  await page.locator("main h1", { hasText: "API reference" }).waitFor({ timeout: 10000 });
  await settled();
  // Chromium reports a 404 of the document as a failed load: the page's answer to it is checked below.
  if (real.status === 404) for (let i = consoleErrors.length - 1; i >= 0; i--) if (/404.*openapi\.json/.test(consoleErrors[i])) consoleErrors.splice(i, 1);
  await page.screenshot({ path: join(OUT, "api.png"), fullPage: true });
  await axe("api");
  await checkConsole("api");
  if (real.status === 200) {
    const summary = real.doc?.paths?.["/api/v1/sessions"]?.get?.summary;
    const op = page.locator('li[data-op="GET /api/v1/sessions"]');
    const shown = (await op.locator(".op-summary").textContent({ timeout: 5000 }).catch(() => null))?.trim();
    if (!summary) fail("the daemon's /openapi.json has no summary for GET /api/v1/sessions");
    else if (shown !== summary) fail(`the API page shows GET /api/v1/sessions with '${shown}', the document says '${summary}'`);
    else note(`API page: GET /api/v1/sessions, "${summary}"`);
    await op.locator("summary").first().click();
    await op.locator(".op-body").waitFor({ timeout: 5000 }).catch(() => fail("GET /api/v1/sessions does not open"));
    await page.screenshot({ path: join(OUT, "api-sessions-open.png"), fullPage: true });
    await axe("api-open");
  } else if (real.status === 404) {
    await page.getByTestId("no-openapi").waitFor({ timeout: 5000 })
      .catch(() => fail("/openapi.json answered 404 and the API page does not say the daemon serves no description"));
    note("SKIPPED: GET /api/v1/sessions on the API page (this daemon's /openapi.json answers 404; the page says so)");
    figures.api_reference = "skipped: the daemon serves no /openapi.json";
  } else {
    fail(`GET /openapi.json answered ${real.status}`);
  }
  await checkConsole("api reference");
  await page.unroute("**/openapi.json");
  const sample = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "openapi-sample.json"), "utf8");
  await page.route("**/openapi.json", (r) => r.fulfill({ status: 200, contentType: "application/json", body: sample }));
  await page.goto(`${BASE}/#/`);
  await visit("#/api", "API reference", "api-sample");
  {
    const get = page.locator('li[data-op="GET /api/v1/sessions"]');
    if (((await get.locator(".op-summary").textContent()) ?? "").trim() !== "List sessions, newest first, one page at a time") fail("sample: the summary of GET /api/v1/sessions is not shown");
    await get.locator("summary").first().focus();
    await page.keyboard.press("Enter"); // keyboard opens an operation
    await get.locator("table.params").waitFor({ timeout: 5000 }).catch(() => fail("sample: GET /api/v1/sessions does not open by keyboard"));
    const params = (await get.locator("table.params").textContent()) ?? "";
    if (!params.includes("1 to 1000") || !params.includes("one of \"active\"")) fail(`sample: the parameters lack their constraints: ${params}`);
    if (!((await get.textContent()) ?? "").includes("array of Session")) fail("sample: the response's $ref is not named");
    const post = page.locator('li[data-op="POST /api/v1/sessions"]');
    await post.locator("summary").first().click();
    await post.locator(".op-body").waitFor({ timeout: 5000 }).catch(() => fail("sample: POST /api/v1/sessions does not open"));
    const postText = (await post.textContent()) ?? "";
    if (!postText.includes("SessionCreate") || !postText.includes("No other fields") || !postText.includes("user_id")) fail(`sample: the request body's schema is not resolved: ${postText.slice(0, 300)}`);
    if (!(await post.locator(".role-admin").count())) fail("sample: the role is not shown");
    // A schema deeper than the open levels starts closed (Session.gpu.placement).
    const deep = get.locator(".fields-list details:not([open])");
    if (!(await deep.count())) fail("sample: no deep schema is collapsed");
    await page.screenshot({ path: join(OUT, "api-sample-open.png"), fullPage: true });
    await axe("api-sample-open");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: join(OUT, "api-sample-dark.png"), fullPage: true });
    await axe("api-sample-dark");
    await page.emulateMedia({ colorScheme: "light" });
    await page.getByRole("searchbox", { name: /^Filter/ }).fill("status patch");
    await page.getByText("1 of 5 operations").waitFor({ timeout: 5000 }).catch(() => fail("sample: the filter does not narrow to one operation"));
    if (await page.locator('li[data-op="GET /api/v1/sessions"]').count()) fail("sample: the filter left GET /api/v1/sessions shown");
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByRole("searchbox", { name: /^Filter/ }).fill("");
    await page.screenshot({ path: join(OUT, "api-sample-laptop.png"), fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
    note("API page against the sample document: grouped by tag, $ref resolved, deep schemas closed, filter, keyboard");
  }
  await page.unroute("**/openapi.json");
  await checkConsole("api reference (sample)");

  // A viewer (its own browser context, so its own cookie) reads and is offered no write.
  const viewerToken = env("WEB_VIEWER_TOKEN", "");
  if (viewerToken && env("WEB_NO_LOGIN", "0") !== "1") {
    const vc = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const vp = await vc.newPage();
    const vErrors = [];
    vp.on("pageerror", (e) => vErrors.push(e.message));
    await vp.goto(`${BASE}/`);
    await vp.locator("#token").fill(viewerToken);
    await vp.getByRole("button", { name: "Log in" }).click();
    await vp.locator("main h1", { hasText: "Overview" }).waitFor({ timeout: 10000 });
    if ((await vp.locator(".who").textContent()) !== "viewer") fail("the viewer is not shown as viewer");
    await vp.goto(`${BASE}/#/sessions`);
    await vp.locator("main h1", { hasText: "Sessions" }).waitFor();
    if (await vp.getByRole("button", { name: "Create session" }).count()) fail("a viewer is offered Create session");
    await vp.goto(`${BASE}/#/alerts`);
    await vp.locator("main h1", { hasText: "Alerts" }).waitFor();
    await vp.waitForTimeout(500);
    if (await vp.getByRole("button", { name: /Acknowledge/ }).count()) fail("a viewer is offered Acknowledge");
    await vp.screenshot({ path: join(OUT, "viewer-alerts.png"), fullPage: true });
    await vp.goto(`${BASE}/#/nodes/${encodeURIComponent(nodeName)}`);
    await vp.locator("main h1", { hasText: `Node ${nodeName}` }).waitFor({ timeout: 10000 });
    await vp.getByTestId("node-refusal").waitFor({ timeout: 5000 }).catch(() => fail("the viewer is not shown that the node refuses creates"));
    if (await vp.getByRole("button", { name: "Set status" }).count()) fail("a viewer is offered Set status");
    if (await vp.getByLabel("New status").count()) fail("a viewer is offered the status control");
    await vp.screenshot({ path: join(OUT, "viewer-node.png"), fullPage: true });
    if (vErrors.length) fail(`viewer page errors: ${vErrors.join(" | ")}`);
    await vc.close();
    note("viewer: logged in, reads, offered no write");
  }
  await reopen();

  // Live: a status set elsewhere (the API, as the CLI or another admin would) shows on the open Nodes page,
  // no reload, through the stream's node event.
  if (await live()) {
    const setStatus = async (status, reason) => {
      const r = await fetch(`${BASE}/api/v1/gpu-nodes/${encodeURIComponent(nodeName)}/status`, {
        method: "PATCH", headers: { Authorization: `Bearer ${env("WEB_TOKEN", "")}`, "Content-Type": "application/json" },
        body: JSON.stringify(reason ? { status, reason, by: "web-test" } : { status, by: "web-test" }) });
      if (!r.ok) fail(`PATCH status ${status}: ${r.status} ${await r.text()}`);
    };
    await page.goto(`${BASE}/#/nodes`);
    const row = page.locator(`tr[data-node="${nodeName}"]`);
    await row.waitFor({ timeout: 10000 });
    const t0 = Date.now();
    await setStatus("drained", "rack move");
    try {
      await row.locator(".status-drained").waitFor({ timeout: 10000 });
      const dt = (Date.now() - t0) / 1000;
      figures.live_node_status_seconds = dt;
      note(`a status set through the API shows on the open Nodes page ${dt.toFixed(2)} s later, no reload`);
      if (dt > 3) fail(`the node's new status took ${dt.toFixed(2)} s to show (over 3 s)`);
    } catch {
      fail("a status set through the API did not show on the open Nodes page within 10 s");
    }
    await setStatus("active");
    await row.locator(".status-active").waitFor({ timeout: 10000 }).catch(() => fail("the node's return to active did not show"));
    await checkConsole("node status live");
  }
}

if (foreign.size) fail(`the page asked other origins: ${[...foreign].join(", ")}`);
writeFileSync(join(OUT, `figures-${MODE}.json`), JSON.stringify(figures, null, 1) + "\n");
await browser.close();
if (failures.length) {
  console.log(`${failures.length} failure(s)`);
  process.exit(1);
}
console.log("web checks passed");

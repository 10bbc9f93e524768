/**
 * The dashboard's built-in files: served from the strings in `src/server/dashboard/assets.ts` with a strict
 * Content-Security-Policy, that module generated from `src/server/dashboard/client/` and fresh, and no client
 * file writing markup from data (the browser test, tests/dashboard_browser_test.ts, checks the pages).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { DASHBOARD_CSP, DASHBOARD_PATHS, dashboardResponse } from "../src/server/dashboard/mod.ts";
import { DASHBOARD_ASSETS } from "../src/server/dashboard/assets.ts";
import { makeTempDir, REPO, waitFor } from "./_helpers.ts";
import { fakeIo } from "./_cli.ts";
import { main } from "../src/cli/main.ts";
import { handlers, schedules } from "../handlers/mod.ts";

const CLIENT = join(REPO, "src/server/dashboard/client");
const BASE = "http://127.0.0.1:7420";

test("the page and each asset are served with their type, the CSP and no-sniff", async () => {
  assert.ok(DASHBOARD_PATHS.includes("/"));
  assert.ok(DASHBOARD_PATHS.includes("/assets/app.js"));
  assert.ok(DASHBOARD_PATHS.includes("/assets/style.css"));
  for (const path of DASHBOARD_PATHS) {
    const response = dashboardResponse(new Request(BASE + path))!;
    assert.equal(response.status, 200, path);
    const type = response.headers.get("content-type")!;
    assert.match(
      type,
      path === "/" ? /^text\/html/ : path.endsWith(".css") ? /^text\/css/ : /^text\/javascript/,
    );
    assert.equal(response.headers.get("content-security-policy"), DASHBOARD_CSP);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    assert.equal(await response.text(), DASHBOARD_ASSETS[path]!.body);
  }
});

test("the CSP allows no inline script, no other origin and no framing", () => {
  const directives = new Map(DASHBOARD_CSP.split("; ").map((d) => [d.split(" ")[0], d.split(" ").slice(1)]));
  assert.deepEqual(directives.get("default-src"), ["'none'"]);
  assert.deepEqual(directives.get("script-src"), ["'self'"]);
  assert.deepEqual(directives.get("style-src"), ["'self'"]);
  assert.deepEqual(directives.get("connect-src"), ["'self'"]);
  assert.deepEqual(directives.get("frame-ancestors"), ["'none'"]);
  assert.doesNotMatch(DASHBOARD_CSP, /unsafe|\*|https?:/);
});

test("the page loads its script from /assets/app.js and holds no inline script or style", () => {
  const page = DASHBOARD_ASSETS["/"]!.body;
  assert.match(page, /<script type="module" src="\/assets\/app\.js"><\/script>/);
  assert.equal([...page.matchAll(/<script/g)].length, 1, "one script tag, with a src");
  assert.doesNotMatch(page, /<style|\sstyle=|\son[a-z]+=/i);
  assert.doesNotMatch(page, /https?:\/\//, "nothing from another origin: the page works offline");
});

test("a request whose If-None-Match holds the ETag gets 304; HEAD gets headers and no body", async () => {
  const first = dashboardResponse(new Request(`${BASE}/assets/app.js`))!;
  const etag = first.headers.get("etag")!;
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  const again = dashboardResponse(
    new Request(`${BASE}/assets/app.js`, { headers: { "If-None-Match": etag } }),
  )!;
  assert.equal(again.status, 304);
  assert.equal(await again.text(), "");
  const head = dashboardResponse(new Request(`${BASE}/`, { method: "HEAD" }))!;
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  assert.match(head.headers.get("content-type")!, /^text\/html/);
});

test("paths and methods that are not the dashboard's are left to the caller", () => {
  for (
    const path of [
      "/api/stats",
      "/assets/",
      "/assets/missing.js",
      "/assets/../mod.ts",
      "/index.html",
      "/metrics",
    ]
  ) {
    assert.equal(dashboardResponse(new Request(BASE + path)), undefined, path);
  }
  assert.equal(dashboardResponse(new Request(`${BASE}/`, { method: "POST", body: "{}" })), undefined);
  assert.equal(dashboardResponse(new Request(`${BASE}/assets/app.js`, { method: "DELETE" })), undefined);
});

test("every module the page imports is served, so the page loads with nothing from disk", () => {
  const served = new Set(DASHBOARD_PATHS);
  for (const path of DASHBOARD_PATHS.filter((p) => p.endsWith(".js"))) {
    for (const [, name] of DASHBOARD_ASSETS[path]!.body.matchAll(/from "\.\/([a-z_]+\.js)"/g)) {
      assert.ok(served.has(`/assets/${name}`), `${path} imports ./${name}, which is not served`);
    }
  }
});

test("no client file writes markup from a string: no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval", () => {
  for (const name of readdirSync(CLIENT).filter((n) => n.endsWith(".js"))) {
    const text = readFileSync(join(CLIENT, name), "utf8");
    assert.doesNotMatch(
      text,
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|srcdoc/,
      `src/server/dashboard/client/${name}`,
    );
  }
});

test("assets.ts is what scripts/gen_dashboard.ts makes of client/ (deno task dashboard rewrites it)", () => {
  const result = spawnSync(process.execPath, ["run", "-A", "scripts/gen_dashboard.ts", "--check"], {
    cwd: REPO,
    encoding: "utf8",
  });
  assert.equal(result.status, 0, result.stderr);
});

test("prismq serve serves the dashboard at / and /assets/, without a token, beside the API", async () => {
  const { dir, remove } = makeTempDir();
  const io = fakeIo({ env: { PRISMQ_ADMIN_TOKENS: "dashboard-test-admin-token-01" } });
  const exit = main(
    ["serve", "--listen", "127.0.0.1:0", "--db", join(dir, "queue.db")],
    io,
    handlers,
    schedules,
  );
  try {
    await waitFor(() => /http:\/\/127\.0\.0\.1:\d+/.test(io.out), 30_000, "prismq serve to listen");
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(io.out)![0];
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-security-policy"), DASHBOARD_CSP);
    assert.equal(await page.text(), DASHBOARD_ASSETS["/"]!.body);
    const script = await fetch(`${url}/assets/app.js`);
    assert.match(script.headers.get("content-type")!, /^text\/javascript/);
    assert.equal(await script.text(), DASHBOARD_ASSETS["/assets/app.js"]!.body);
    const api = await fetch(`${url}/api/stats`);
    await api.body?.cancel();
    assert.equal(api.status, 401, "the API still wants its token");
    const missing = await fetch(`${url}/assets/nothing.js`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);
  } finally {
    io.fire("SIGTERM");
    assert.equal(await exit, 0, io.err);
    remove();
  }
});

// The dashboard's entry: a router over the location's hash (#/, #/tasks, #/tasks/12, #/queues,
// #/schedules), and a poll that refreshes the page shown every few seconds without reloading it.

import { fill, h, when } from "./dom.js";
import { forgetToken, hasToken } from "./api.js";
import { overviewPage } from "./overview.js";
import { tasksPage } from "./tasks.js";
import { taskPage } from "./task.js";
import { queuesPage } from "./queues.js";
import { schedulesPage } from "./schedules.js";

const POLL_MS = 2000;

const ROUTES = [
  { pattern: /^\/?$/, nav: "overview", page: overviewPage },
  { pattern: /^\/tasks$/, nav: "tasks", page: tasksPage },
  { pattern: /^\/tasks\/(\d+)$/, nav: "tasks", page: taskPage },
  { pattern: /^\/queues$/, nav: "queues", page: queuesPage },
  { pattern: /^\/schedules$/, nav: "schedules", page: schedulesPage },
];

const main = document.getElementById("main");
const status = document.getElementById("status");
const notice = document.getElementById("notice");

let current = null;
// Set when an action moves to another page: its notice stays on the page it lands on.
let carryNotice = false;
let generation = 0;
let timer = 0;

/** Shows what an action did (or why it failed) above the page, until the next one. */
function notify(message, kind = "ok") {
  notice.className = `notice notice-${kind}`;
  notice.hidden = false;
  notice.textContent = message;
}

/** Moves to another page, keeping the notice of the action that moved there. */
function go(hash) {
  carryNotice = true;
  location.hash = hash;
}

/** One refresh of the current page, then the next poll. */
async function refreshOnce() {
  clearTimeout(timer);
  const mine = generation;
  if (!current) return;
  document.getElementById("forget-token").hidden = !hasToken();
  try {
    await current.refresh();
    if (mine !== generation) return;
    status.textContent = `Updated ${when(Date.now())}`;
    status.className = "status";
  } catch (error) {
    if (mine !== generation) return;
    status.textContent = `Not updated: ${error.message}`;
    status.className = "status status-error";
  }
  if (mine === generation) {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }
}

// Refreshes never overlap: one asked for while another runs follows it, so that an answer read before an
// action can never be drawn after one read since.
let inFlight = null;
let again = false;

/** Refreshes the current page now (after the refresh under way, if any), then keeps polling. */
function refresh() {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    try {
      do {
        again = false;
        await refreshOnce();
      } while (again);
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

function poll() {
  if (document.hidden) timer = setTimeout(poll, POLL_MS);
  else refresh();
}

/** The hash's path and query: "#/tasks?status=failed" is "/tasks" and its URLSearchParams. */
function place() {
  const hash = location.hash.slice(1);
  const at = hash.indexOf("?");
  return {
    path: at === -1 ? hash : hash.slice(0, at),
    query: new URLSearchParams(at === -1 ? "" : hash.slice(at + 1)),
  };
}

function route() {
  generation++;
  clearTimeout(timer);
  if (!carryNotice) notice.hidden = true;
  carryNotice = false;
  const { path, query } = place();
  const match = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  for (const link of document.querySelectorAll("nav a")) {
    if (match && link.dataset.nav === match.r.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    current = null;
    fill(
      main,
      h("h1", { text: "Not found" }),
      h("p", {}, "No page is at this address. ", h("a", { href: "#/", text: "Overview" })),
    );
    return;
  }
  fill(main);
  current = match.r.page(main, { id: match.m[1], query }, { notify, refresh, go });
  refresh();
}

document.getElementById("forget-token").addEventListener("click", () => {
  forgetToken();
  notify("The token is forgotten; the next request asks for one.");
  refresh();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
addEventListener("hashchange", route);
route();

// Tasks: the list with the API's filters (status, type, queue, time range, a payload field) and keyset
// paging, newest first; the bulk retry of failed tasks. The filters live in the address (#/tasks?...), so
// a filtered list can be shared and survives a reload.

import { get, post } from "./api.js";
import { badge, fill, h, table, when } from "./dom.js";
import { actionButton } from "./actions.js";
import { statusesOf } from "./statuses.js";

const PAGE_SIZES = ["25", "50", "100"];
// Requests one page may make while a rare filter's answers come back short (each looks at a bounded
// number of tasks on the server).
const MAX_HOPS = 10;

/** A datetime-local input's value as epoch ms, or undefined when empty. */
function epoch(value) {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

/** Epoch ms as a datetime-local input's value. */
function local(ms) {
  const date = new Date(Number(ms));
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${
    pad(date.getMinutes())
  }`;
}

/** `text` cut to `n` characters, with an ellipsis when cut. */
function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function input(name, placeholder, value) {
  return h("input", { name, id: `filter-${name}`, placeholder, value: value ?? "", autocomplete: "off" });
}

function labelled(text, control) {
  return h("label", { class: "field" }, h("span", { text }), control);
}

export function tasksPage(main, { query }, ctx) {
  const filters = Object.fromEntries(query);
  const status = h("select", { name: "status", id: "filter-status" });
  /** The status choices: the server's statuses, once known, and the one in the address in any case. */
  function statusOptions(statuses) {
    const chosen = status.value || filters.status || "";
    const all = chosen && !statuses.includes(chosen) ? [...statuses, chosen] : statuses;
    fill(
      status,
      h("option", { value: "", text: "any" }),
      all.map((s) => h("option", { value: s, text: s })),
    );
    status.value = chosen;
  }
  statusOptions(statusesOf(null));
  get("/api/stats").then((stats) => statusOptions(statusesOf(stats.counts)), () => {});
  const type = input("type", "any type", filters.type);
  const queue = input("queue", "any queue", filters.queue);
  const after = h("input", {
    name: "createdAfter",
    id: "filter-created-after",
    type: "datetime-local",
    value: filters.createdAfter ? local(filters.createdAfter) : "",
  });
  const before = h("input", {
    name: "createdBefore",
    id: "filter-created-before",
    type: "datetime-local",
    value: filters.createdBefore ? local(filters.createdBefore) : "",
  });
  const field = input("payloadField", "field, e.g. account", filters.payloadField);
  const value = input("payloadValue", 'value: 42, true, "text" or text', filters.payloadValue);
  const limit = h(
    "select",
    { name: "limit", id: "filter-limit" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: (filters.limit ?? "50") === n, text: n })),
  );
  const form = h(
    "form",
    { class: "filters", "data-testid": "filters" },
    labelled("Status", status),
    labelled("Type", type),
    labelled("Queue", queue),
    labelled("Created after", after),
    labelled("Created before", before),
    labelled("Payload field", field),
    labelled("equals", value),
    labelled("Per page", limit),
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "submit", text: "Filter" }),
      h("button", { type: "reset", text: "Clear" }),
    ),
  );
  const list = h("div", { "data-testid": "task-list" });
  const pager = h("div", { class: "pager" });
  const bulk = h(
    "div",
    { class: "bulk" },
    actionButton(
      "Retry all failed",
      async () => {
        const body = { status: "failed" };
        if (filters.type) body.type = filters.type;
        if (filters.queue) body.queue = filters.queue;
        const answer = await post("/api/tasks/retry", body);
        return `Queued ${answer.retried} failed task${answer.retried === 1 ? "" : "s"} again.`;
      },
      ctx,
      { confirm: "Retry all failed (of this type and queue)? Click again", testid: "retry-all-failed" },
    ),
  );
  fill(main, h("h1", { text: "Tasks" }), form, bulk, list, pager);

  // Keyset paging: the cursors of the pages seen, so "Newer" can go back.
  let cursors = [null];

  function readForm() {
    const next = {};
    if (status.value) next.status = status.value;
    if (type.value.trim()) next.type = type.value.trim();
    if (queue.value.trim()) next.queue = queue.value.trim();
    if (epoch(after.value) !== undefined) next.createdAfter = String(epoch(after.value));
    if (epoch(before.value) !== undefined) next.createdBefore = String(epoch(before.value));
    if (field.value.trim()) {
      next.payloadField = field.value.trim();
      next.payloadValue = value.value;
    }
    if (limit.value !== "50") next.limit = limit.value;
    return next;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const key of Object.keys(filters)) delete filters[key];
    Object.assign(filters, readForm());
    cursors = [null];
    history.replaceState(
      null,
      "",
      `#/tasks${Object.keys(filters).length ? "?" + new URLSearchParams(filters) : ""}`,
    );
    ctx.refresh();
  });
  form.addEventListener("reset", () => {
    setTimeout(() => form.requestSubmit());
  });

  /** The API's query for the current filters, from `cursor` (none: the newest), for `limit` tasks. */
  function apiQuery(cursor, limit) {
    const params = new URLSearchParams();
    for (const key of ["status", "type", "queue", "createdAfter", "createdBefore"]) {
      if (filters[key]) params.set(key, filters[key]);
    }
    if (filters.payloadField) params.set(`payload.${filters.payloadField}`, filters.payloadValue ?? "");
    params.set("limit", String(limit));
    if (cursor) params.set("cursor", cursor);
    return params;
  }

  /**
   * A page of matching tasks. The server looks at a bounded number of tasks per request, so a rare filter's
   * answer may be short, or empty, with a `next` that goes on further back: follow it until the page is full,
   * the list ends, or MAX_HOPS requests were made (then the page says so, and Older goes on from there).
   */
  async function page() {
    const size = Number(filters.limit ?? "50");
    let cursor = cursors[cursors.length - 1];
    const tasks = [];
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      const answer = await get(`/api/tasks?${apiQuery(cursor, size - tasks.length)}`);
      tasks.push(...answer.tasks);
      cursor = answer.next;
      if (!cursor || tasks.length >= size) return { tasks, next: cursor, stoppedEarly: false };
    }
    return { tasks, next: cursor, stoppedEarly: true };
  }

  async function refresh() {
    const answer = await page();
    const rows = answer.tasks.map((task) => [
      h("a", { href: `#/tasks/${task.id}`, text: `#${task.id}` }),
      task.type,
      task.queue,
      badge(task.status),
      `${task.attempts}/${task.maxAttempts}`,
      when(task.createdAt),
      when(task.finishedAt ?? task.startedAt ?? null),
      h("code", { class: "payload-text", text: clip(JSON.stringify(task.payload), 80) }),
      h("span", { class: "error-text", text: clip(task.errorMessage ?? "", 120) }),
    ]);
    fill(
      list,
      table(
        ["Task", "Type", "Queue", "Status", "Attempts", "Created", "Started/finished", "Payload", "Error"],
        rows,
        answer.stoppedEarly ? "No match among the tasks looked at so far." : "No task matches these filters.",
      ),
      answer.stoppedEarly
        ? h("p", {
          class: "muted",
          "data-testid": "stopped-early",
          text: "This filter is rare: the server was asked " + MAX_HOPS +
            " times and looked that far back. " +
            "Older → looks further.",
        })
        : null,
    );
    const newer = h("button", { type: "button", disabled: cursors.length === 1, text: "← Newer" });
    const older = h("button", { type: "button", disabled: !answer.next, text: "Older →" });
    newer.addEventListener("click", () => {
      cursors.pop();
      ctx.refresh();
    });
    older.addEventListener("click", () => {
      cursors.push(answer.next);
      ctx.refresh();
    });
    fill(pager, newer, h("span", { text: ` page ${cursors.length} ` }), older);
  }
  return { refresh };
}

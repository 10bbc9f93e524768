// One task: its fields, payload, progress, error, result, dependencies (when the task has `dependsOn`) and
// logs; and what can be done to it: retry, cancel, delete.

import { get, post, remove } from "./api.js";
import { badge, duration, fill, h, pretty, table, when } from "./dom.js";
import { actionButton } from "./actions.js";
import { cancellable, retryable } from "./statuses.js";

function block(title, testid, content) {
  return h("section", { "data-testid": testid }, h("h2", { text: title }), content);
}

function pre(value) {
  return h("pre", { text: pretty(value) });
}

/** The tasks a task depends on, each with its status when it can still be read. */
async function dependencies(ids) {
  const shown = ids.slice(0, 50);
  const tasks = await Promise.all(shown.map((id) => get(`/api/tasks/${id}`).catch(() => null)));
  return h(
    "ul",
    { class: "dependencies" },
    shown.map((id, i) =>
      h(
        "li",
        {},
        h("a", { href: `#/tasks/${id}`, text: `#${id}` }),
        " ",
        tasks[i] ? badge(tasks[i].status) : h("span", { class: "muted", text: "(no longer stored)" }),
        tasks[i] ? ` ${tasks[i].type}` : "",
      )
    ),
    ids.length > shown.length ? h("li", { text: `and ${ids.length - shown.length} more` }) : null,
  );
}

export function taskPage(main, { id }, ctx) {
  const title = h("h1", { text: `Task #${id}` });
  const actions = h("div", { class: "actions", "data-testid": "task-actions" });
  const body = h("div");
  fill(main, h("p", {}, h("a", { href: "#/tasks", text: "← Tasks" })), title, actions, body);
  let shownStatus = null;

  function drawActions(task) {
    const buttons = [];
    if (retryable(task.status)) {
      buttons.push(actionButton(
        "Retry",
        async () => {
          await post(`/api/tasks/${id}/retry`);
          return `Task #${id} is queued again.`;
        },
        ctx,
        { testid: "retry" },
      ));
    }
    if (cancellable(task.status)) {
      buttons.push(actionButton(
        "Cancel",
        async () => {
          await post(`/api/tasks/${id}/cancel`);
          return `Task #${id} is cancelled.`;
        },
        ctx,
        { testid: "cancel", confirm: "Cancel it? Click again" },
      ));
    }
    buttons.push(actionButton(
      "Delete",
      async () => {
        await remove(`/api/tasks/${id}`);
        ctx.go("#/tasks");
        return `Task #${id} is deleted.`;
      },
      ctx,
      { testid: "delete", danger: true, confirm: "Delete it for good? Click again" },
    ));
    fill(actions, buttons);
  }

  async function refresh() {
    let task;
    try {
      task = await get(`/api/tasks/${id}`);
    } catch (error) {
      if (error.status !== 404) throw error;
      fill(actions);
      fill(
        body,
        h("p", {
          class: "empty",
          text: `No task #${id} is stored: it was deleted or purged, or never existed.`,
        }),
      );
      return;
    }
    const logs = await get(`/api/tasks/${id}/logs`);
    fill(title, `Task #${task.id} `, h("span", { class: "muted", text: task.type }), " ", badge(task.status));
    // Actions are redrawn only when the status changes, so that a button armed for a second click stays so.
    if (task.status !== shownStatus) drawActions(task);
    shownStatus = task.status;
    const fields = [
      ["Status", badge(task.status)],
      ["Type", task.type],
      ["Queue", task.queue],
      ["Priority", task.priority],
      ["Attempts", `${task.attempts} of ${task.maxAttempts}`],
      ["Created", when(task.createdAt)],
      ["Runs after", when(task.runAfter)],
      ["Started", when(task.startedAt)],
      ["Finished", when(task.finishedAt)],
      ["Ran for", task.startedAt && task.finishedAt ? duration(task.finishedAt - task.startedAt) : "—"],
      ["Updated", when(task.updatedAt)],
      ["Worker", task.lockedBy ?? "—"],
      ["Lease until", when(task.leaseUntil)],
      ["Time limit", task.timeoutMs === null ? "handler's default" : duration(task.timeoutMs)],
      ["Idempotency key", task.idempotencyKey ?? "—"],
    ];
    const sections = [
      h(
        "table",
        { class: "fields", "data-testid": "task-fields" },
        h("tbody", {}, fields.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", {}, v)))),
      ),
      block("Payload", "task-payload", pre(task.payload)),
    ];
    if (task.progress !== null && task.progress !== undefined) {
      sections.push(block("Progress", "task-progress", pre(task.progress)));
    }
    if (task.errorMessage) {
      sections.push(block("Error", "task-error", h("pre", { class: "error-text", text: task.errorMessage })));
    }
    if (task.status === "completed" || (task.result !== null && task.result !== undefined)) {
      sections.push(block("Result", "task-result", pre(task.result)));
    }
    if (Array.isArray(task.dependsOn) && task.dependsOn.length > 0) {
      sections.push(block("Depends on", "task-dependencies", await dependencies(task.dependsOn)));
    }
    if (Array.isArray(task.dependents) && task.dependents.length > 0) {
      sections.push(block("Waited on by", "task-dependents", await dependencies(task.dependents)));
    }
    sections.push(block(
      "Logs",
      "task-logs",
      table(
        ["Time", "Level", "Message", "Details"],
        (logs.logs ?? []).map((log) => [
          when(log.at),
          h("span", { class: `level level-${String(log.level)}`, text: log.level }),
          h("span", { class: "log-message", text: log.message }),
          log.details === undefined || log.details === null ? "" : h("pre", { text: pretty(log.details) }),
        ]),
        "No logs.",
      ),
    ));
    fill(body, sections);
  }
  return { refresh };
}

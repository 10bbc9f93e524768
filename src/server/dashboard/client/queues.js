// Queues: each queue's depth, running tasks, oldest wait, limits and state; pause and resume.

import { get, post } from "./api.js";
import { badge, duration, fill, h, table } from "./dom.js";
import { actionButton } from "./actions.js";

function rate(value) {
  if (value === null || value === undefined) return "none";
  if (typeof value === "string") return value;
  if (typeof value === "object" && "count" in value) {
    return `${value.count} per ${duration(value.perMs ?? value.windowMs)}`;
  }
  return JSON.stringify(value);
}

export function queuesPage(main, _params, ctx) {
  const list = h("div", { "data-testid": "queue-list" });
  fill(
    main,
    h("h1", { text: "Queues" }),
    h("p", {
      class: "muted",
      text: "A paused queue keeps its tasks; no worker claims them until it is resumed.",
    }),
    list,
  );

  async function refresh() {
    const answer = await get("/api/queues");
    const rows = (answer.queues ?? []).map((q) => {
      const path = `/api/queues/${encodeURIComponent(q.name)}/${q.paused ? "resume" : "pause"}`;
      const toggle = actionButton(
        q.paused ? "Resume" : "Pause",
        async () => {
          await post(path);
          return `Queue ${q.name} is ${q.paused ? "resumed" : "paused"}.`;
        },
        ctx,
        { testid: `${q.paused ? "resume" : "pause"}-${q.name}` },
      );
      return [
        h("a", { href: `#/tasks?queue=${encodeURIComponent(q.name)}`, text: q.name }),
        h("span", { "data-testid": `queue-state-${q.name}` }, badge(q.paused ? "paused" : "active")),
        String(q.queued ?? 0),
        String(q.running ?? 0),
        duration(q.oldestWaitMs ?? null),
        q.concurrency === null || q.concurrency === undefined ? "no limit" : String(q.concurrency),
        rate(q.rate),
        toggle,
      ];
    });
    fill(
      list,
      table(
        ["Queue", "State", "Queued", "Running", "Oldest wait", "Concurrency", "Rate", ""],
        rows,
        "No queue yet: a queue appears with its first task or setting.",
      ),
    );
  }
  return { refresh };
}

// Overview: counts per status and per queue, tasks finished per minute over the last hour, the oldest
// wait, and the live workers.

import { get } from "./api.js";
import { badge, duration, fill, h, table, when } from "./dom.js";
import { noChartData, throughputChart } from "./chart.js";
import { statusesOf } from "./statuses.js";

const CHART_MINUTES = 60;
// As `prismq status`: a worker without a heartbeat for this long has died or hangs.
const STALE_AFTER_MS = 30_000;

/** The throughput chart, or its "no data" state when the server has no such route or it failed. */
async function chart() {
  try {
    const answer = await get(`/api/throughput?minutes=${CHART_MINUTES}`);
    const points = Array.isArray(answer)
      ? answer
      : answer.minutes ?? answer.throughput ?? answer.points ?? [];
    return throughputChart(points, CHART_MINUTES, Date.now());
  } catch (error) {
    if (error.status === 404) {
      return noChartData(
        "No data: this server does not report throughput (GET /api/throughput answered 404).",
      );
    }
    return noChartData(`No data: ${error.message}`);
  }
}

export function overviewPage(main) {
  const cards = h("div", { class: "cards", "data-testid": "status-counts" });
  const wait = h("div", { class: "cards" });
  const chartPlace = h("section", {}, h("h2", { text: "Finished per minute, last hour" }));
  const queues = h("section", {}, h("h2", { text: "Queues" }));
  const workers = h("section", {}, h("h2", { text: "Workers" }));
  fill(main, h("h1", { text: "Overview" }), cards, wait, chartPlace, queues, workers);
  let chartBody = null;

  async function refresh() {
    const [stats, queueList, workerList, chartNode] = await Promise.all([
      get("/api/stats"),
      get("/api/queues"),
      get("/api/workers"),
      chart(),
    ]);
    fill(
      cards,
      statusesOf(stats.counts).map((status) =>
        h(
          "a",
          { class: "card", href: `#/tasks?status=${status}`, "data-testid": `count-${status}` },
          h("span", { class: "card-value", text: (stats.counts ?? {})[status] ?? 0 }),
          h("span", { class: "card-label" }, badge(status)),
        )
      ),
    );
    const workersSeen = workerList.workers ?? [];
    const now = Date.now();
    const live = workersSeen.filter((w) => now - w.heartbeatAt <= STALE_AFTER_MS);
    fill(
      wait,
      h(
        "div",
        { class: "card", "data-testid": "oldest-wait" },
        h("span", { class: "card-value", text: duration(stats.oldestQueuedAgeMs ?? null) }),
        h("span", { class: "card-label", text: "oldest wait of a runnable task" }),
      ),
      h(
        "div",
        { class: "card", "data-testid": "live-workers" },
        h("span", { class: "card-value", text: live.length }),
        h("span", { class: "card-label", text: live.length === 1 ? "live worker" : "live workers" }),
      ),
    );
    if (chartBody) chartBody.replaceWith(chartNode);
    else chartPlace.append(chartNode);
    chartBody = chartNode;
    const rows = (queueList.queues ?? []).map((q) => [
      h("a", { href: `#/tasks?queue=${encodeURIComponent(q.name)}`, text: q.name }),
      badge(q.paused ? "paused" : "active"),
      h("a", { href: `#/tasks?queue=${encodeURIComponent(q.name)}&status=queued`, text: q.queued ?? 0 }),
      h("a", { href: `#/tasks?queue=${encodeURIComponent(q.name)}&status=running`, text: q.running ?? 0 }),
      duration(q.oldestWaitMs ?? null),
    ]);
    fill(
      queues,
      h("h2", { text: "Queues" }),
      table(
        ["Queue", "State", "Queued", "Running", "Oldest wait"],
        rows,
        "No queue holds a task or a setting now.",
      ),
    );
    fill(
      workers,
      h("h2", { text: "Workers" }),
      table(
        ["Worker", "State", "Host", "PID", "Slots", "Handlers", "Started", "Last heartbeat"],
        workersSeen.map((w) => [
          w.id,
          live.includes(w) ? badge("live") : badge("stale"),
          w.host ?? "—",
          w.pid ?? "—",
          w.concurrency,
          (w.handlerTypes ?? []).join(", "),
          when(w.startedAt),
          `${when(w.heartbeatAt)} (${duration(Math.max(0, now - w.heartbeatAt))} ago)`,
        ]),
        "No worker has registered.",
      ),
    );
  }
  return { refresh };
}

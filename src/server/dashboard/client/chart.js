// The overview's chart of tasks finished per minute over the last hour, drawn as SVG bars: completed below,
// failed stacked above. Minutes the API leaves out count as zero.

import { h, s } from "./dom.js";

const WIDTH = 720;
const HEIGHT = 200;
const LEFT = 40;
const BOTTOM = 24;
const TOP = 10;
const MINUTE = 60_000;

/**
 * The last `minutes` whole minutes, each with its counts from `points` (zero when absent). They end at the
 * server's last minute when it gave every minute (its clock, not this browser's), else at `now`.
 */
export function denseMinutes(points, minutes, now) {
  const byMinute = new Map(points.map((p) => [p.minute, p]));
  const last = points.length === minutes
    ? Math.max(...points.map((p) => p.minute))
    : Math.floor(now / MINUTE) * MINUTE;
  const out = [];
  for (let i = minutes - 1; i >= 0; i--) {
    const minute = last - i * MINUTE;
    const point = byMinute.get(minute);
    out.push({ minute, completed: point ? point.completed : 0, failed: point ? point.failed : 0 });
  }
  return out;
}

function clock(ms) {
  const date = new Date(ms);
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}

/** A round number at least `n`, for the top of the scale. */
function niceMax(n) {
  if (n <= 5) return 5;
  const step = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * step >= n) return m * step;
  return 10 * step;
}

/** The chart of `points` (per-minute counts) over the last `minutes` minutes, as an element. */
export function throughputChart(points, minutes, now) {
  const data = denseMinutes(points, minutes, now);
  const completed = data.reduce((sum, p) => sum + p.completed, 0);
  const failed = data.reduce((sum, p) => sum + p.failed, 0);
  const top = niceMax(Math.max(...data.map((p) => p.completed + p.failed)));
  const plotWidth = WIDTH - LEFT - 4;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = plotWidth / data.length;
  const y = (n) => TOP + plotHeight - (n / top) * plotHeight;
  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": `Tasks finished per minute: ${completed} completed and ${failed} failed in the last hour`,
  });
  for (const level of [0, top / 2, top]) {
    svg.append(s("line", { class: "grid", x1: LEFT, x2: WIDTH, y1: y(level), y2: y(level) }));
    svg.append(s("text", { class: "axis", x: LEFT - 6, y: y(level) + 4, "text-anchor": "end", text: level }));
  }
  data.forEach((p, i) => {
    const x = LEFT + i * slot + 1;
    const width = Math.max(1, slot - 2);
    const group = s(
      "g",
      {},
      s("title", { text: `${clock(p.minute)}: ${p.completed} completed, ${p.failed} failed` }),
    );
    if (p.completed > 0) {
      group.append(
        s("rect", { class: "bar-completed", x, width, y: y(p.completed), height: y(0) - y(p.completed) }),
      );
    }
    if (p.failed > 0) {
      const base = y(p.completed);
      group.append(
        s("rect", {
          class: "bar-failed",
          x,
          width,
          y: base - (y(0) - y(p.failed)),
          height: y(0) - y(p.failed),
        }),
      );
    }
    // An invisible full-height box, so that hovering an empty minute still shows its title.
    group.append(s("rect", { class: "bar-hover", x, width, y: TOP, height: plotHeight }));
    svg.append(group);
  });
  const labels = [[0, "start"], [Math.floor(data.length / 2), "middle"], [data.length - 1, "end"]];
  for (const [i, anchor] of labels) {
    const x = anchor === "start"
      ? LEFT + i * slot
      : anchor === "end"
      ? LEFT + (i + 1) * slot
      : LEFT + (i + 0.5) * slot;
    svg.append(
      s("text", { class: "axis", x, y: HEIGHT - 6, "text-anchor": anchor, text: clock(data[i].minute) }),
    );
  }
  const legend = h(
    "p",
    { class: "legend" },
    h("span", { class: "key key-completed" }),
    ` ${completed} completed `,
    h("span", { class: "key key-failed" }),
    ` ${failed} failed in the last ${minutes} minutes`,
  );
  return h("div", { class: "chart-box", "data-testid": "throughput-chart" }, svg, legend);
}

/** What the chart's place shows when the server has no throughput route (404) or no answer. */
export function noChartData(reason) {
  return h(
    "div",
    { class: "chart-box no-data", "data-testid": "throughput-no-data" },
    h("p", { text: reason }),
  );
}

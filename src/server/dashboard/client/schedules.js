// Schedules: each schedule the server declares, with its next run and the slot it fired last; and those
// the database still keeps that it no longer declares.

import { get } from "./api.js";
import { fill, h, table, when } from "./dom.js";

export function schedulesPage(main) {
  const list = h("div", { "data-testid": "schedule-list" });
  fill(main, h("h1", { text: "Schedules" }), list);

  async function refresh() {
    const answer = await get("/api/schedules");
    const rows = (answer.schedules ?? []).map((s) => [
      s.linked === false
        ? h("span", {}, s.name, h("span", { class: "muted", text: " (no longer declared by this server)" }))
        : s.name,
      s.type ?? "—",
      s.cron ?? "—",
      s.timeZone ?? "—",
      when(s.nextRun ?? null),
      when(s.lastSlot ?? null),
      s.lastTaskId ? h("a", { href: `#/tasks/${s.lastTaskId}`, text: `#${s.lastTaskId}` }) : "—",
      when(s.firedAt ?? null),
    ]);
    fill(
      list,
      table(
        ["Schedule", "Type", "Cron", "Time zone", "Next run", "Last slot", "Its task", "Fired at"],
        rows,
        "No schedule is defined.",
      ),
    );
  }
  return { refresh };
}

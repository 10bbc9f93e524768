// Schedules: each schedule the server knows, its next run and the slot it fired last.

import { get } from "./api.js";
import { fill, h, table, when } from "./dom.js";

export function schedulesPage(main) {
  const list = h("div", { "data-testid": "schedule-list" });
  fill(main, h("h1", { text: "Schedules" }), list);

  async function refresh() {
    const answer = await get("/api/schedules");
    const rows = (answer.schedules ?? []).map((s) => [
      s.name,
      s.type ?? "—",
      s.cron ?? "—",
      s.timezone ?? s.timeZone ?? "—",
      when(s.nextRunAt ?? s.nextRun ?? null),
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

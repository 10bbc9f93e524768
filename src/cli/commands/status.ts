/**
 * `prismq status`: counts by status and type, the oldest runnable task's wait, the last minute's
 * throughput, and the live workers.
 *
 * @module
 */
import { TASK_STATUSES } from "../../../mod.ts";
import { expectArguments, parseCommand, parseDuration } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, shownLocation, withQueue } from "../context.ts";
import { count, formatDuration, json, styleFor, styleStatus, table } from "../format.ts";
import { describeWorkers, STALE_AFTER_DEFAULT } from "./workers.ts";

const HELP = `Usage: prismq status [--stale-after <duration>] [--json]

Shows how many tasks are in each status, per type; how long the longest-waiting runnable task has
waited; how many tasks finished in the last minute; and the workers with a recent heartbeat.

Options:
  --stale-after <duration>  A worker is stale after this long without a heartbeat (default ${STALE_AFTER_DEFAULT})
${COMMON_HELP}`;

export const statusCommand: Command = {
  name: "status",
  summary: "Show queue counts, throughput and workers",
  help: HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("status", argv, {
      ...COMMON_OPTIONS,
      "stale-after": { type: "string" },
    });
    expectArguments(positionals, 0);
    const staleAfterMs = parseDuration("--stale-after", values["stale-after"] ?? STALE_AFTER_DEFAULT);
    const { stats, workers } = await withQueue(io, values, async (queue) => {
      const stats = await queue.stats();
      return { stats, workers: describeWorkers(await queue.workers(), Date.now(), staleAfterMs) };
    });
    if (values.json) {
      io.stdout.write(json({
        counts: stats.counts,
        byType: stats.byType,
        oldestQueuedAgeMs: stats.oldestQueuedAgeMs,
        lastMinute: stats.lastMinute,
        workers,
      }));
      return 0;
    }
    const style = styleFor(io.stdout, io);
    const out: string[] = [];
    out.push(`Database: ${shownLocation(values.db, io)}`);
    out.push(
      `Tasks: ${TASK_STATUSES.map((s) => `${styleStatus(style, s)} ${count(stats.counts[s])}`).join(" · ")}`,
    );
    out.push(
      `Oldest runnable task has waited: ${
        stats.oldestQueuedAgeMs === null ? "none waiting" : formatDuration(stats.oldestQueuedAgeMs)
      }`,
    );
    const perSecond = (stats.lastMinute.completed / 60).toFixed(1);
    out.push(
      `Last minute: ${count(stats.lastMinute.completed)} completed (${perSecond}/s), ` +
        `${count(stats.lastMinute.failed)} failed`,
    );
    io.stdout.write(out.join("\n") + "\n");
    const types = Object.keys(stats.byType).sort();
    if (types.length > 0) {
      io.stdout.write("\n");
      const rows = types.map((type) => [type, ...TASK_STATUSES.map((s) => count(stats.byType[type][s]))]);
      io.stdout.write(
        table(
          ["TYPE", ...TASK_STATUSES.map((s) => s.toUpperCase())],
          rows,
          style,
          TASK_STATUSES.map((_, i) => i + 1),
        ),
      );
    }
    const live = workers.filter((w) => !w.stale);
    io.stdout.write(
      `\nWorkers: ${live.length} live${
        workers.length > live.length ? `, ${workers.length - live.length} stale` : ""
      }\n`,
    );
    for (const w of live) {
      io.stdout.write(
        `  ${w.id} (host ${w.host ?? "?"}, pid ${w.pid ?? "?"}, concurrency ${w.concurrency}, heartbeat ` +
          `${formatDuration(w.heartbeatAgeMs)} ago)\n`,
      );
    }
    return 0;
  },
};

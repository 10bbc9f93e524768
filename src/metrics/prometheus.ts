/**
 * The metrics in Prometheus's text exposition format (version 0.0.4): per family a `# HELP` and a
 * `# TYPE` line, then its samples; label values escaped; histograms as cumulative `_bucket` samples up to
 * `le="+Inf"`, then `_sum` and `_count`. A pure function of the object `collectMetrics` returns.
 *
 * @module
 */
import type { DurationHistogram, Metrics, TaskCounters } from "./collect.ts";

/** The `Content-Type` of {@link formatPrometheus}'s text. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples: string[];
}

/** A label value with `\`, `"` and line feeds escaped, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** HELP text with `\` and line feeds escaped. */
function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** A sample value: integers as they are, infinities as the format spells them. */
function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

function sample(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([key, v]) => `${key}="${escapeLabelValue(v)}"`);
  return `${name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${formatValue(value)}`;
}

const COUNTERS: readonly { key: keyof TaskCounters; name: string; help: string }[] = [
  { key: "enqueued", name: "prismq_tasks_enqueued_total", help: "Tasks enqueued." },
  {
    key: "started",
    name: "prismq_tasks_started_total",
    help: "Attempts started, counted when their task finishes (completed, failed or cancelled).",
  },
  {
    key: "retried",
    name: "prismq_tasks_retried_total",
    help: "Attempts after a task's first, counted when the task finishes.",
  },
  { key: "completed", name: "prismq_tasks_completed_total", help: "Tasks completed." },
  { key: "failed", name: "prismq_tasks_failed_total", help: "Tasks failed for good." },
  { key: "cancelled", name: "prismq_tasks_cancelled_total", help: "Tasks cancelled." },
];

function histogramSamples(name: string, labels: Labels, histogram: DurationHistogram): string[] {
  return [
    ...histogram.buckets.map((bucket) =>
      sample(`${name}_bucket`, { ...labels, le: formatValue(bucket.leMs / 1000) }, bucket.count)
    ),
    sample(`${name}_sum`, labels, histogram.sumMs / 1000),
    sample(`${name}_count`, labels, histogram.count),
  ];
}

/**
 * The metrics as Prometheus text: every family with its HELP and TYPE lines (families without samples
 * included), each line ending in a line feed.
 *
 * @example
 * ```ts
 * import { formatPrometheus } from "prismq";
 * const text = formatPrometheus({ at: 0, tasks: [], queues: [], liveWorkers: 2 });
 * console.log(text.includes("prismq_workers_live 2")); // true
 * ```
 *
 * @param metrics what `collectMetrics` returned
 * @returns the text, served with {@link PROMETHEUS_CONTENT_TYPE}
 */
export function formatPrometheus(metrics: Metrics): string {
  const families: Family[] = COUNTERS.map(({ key, name, help }) => ({
    name,
    help,
    type: "counter",
    samples: metrics.tasks.map((t) => sample(name, { type: t.type, queue: t.queue }, t[key] as number)),
  }));
  families.push({
    name: "prismq_task_run_seconds",
    help: "Completed and failed tasks: seconds from the start of their last attempt to their finish.",
    type: "histogram",
    samples: metrics.tasks.flatMap((t) =>
      histogramSamples("prismq_task_run_seconds", { type: t.type, queue: t.queue }, t.runTime)
    ),
  }, {
    name: "prismq_task_wait_seconds",
    help: "Tasks that started: seconds from their enqueue to the start of their last attempt.",
    type: "histogram",
    samples: metrics.tasks.flatMap((t) =>
      histogramSamples("prismq_task_wait_seconds", { type: t.type, queue: t.queue }, t.waitTime)
    ),
  }, {
    name: "prismq_queue_tasks",
    help: "Tasks in a queue now, by status (queued includes those due later).",
    type: "gauge",
    samples: metrics.queues.flatMap((q) => [
      sample("prismq_queue_tasks", { queue: q.queue, status: "queued" }, q.queued),
      sample("prismq_queue_tasks", { queue: q.queue, status: "running" }, q.running),
    ]),
  }, {
    name: "prismq_queue_scheduled_tasks",
    help: "Queued tasks not due before a later time (scheduled, or backing off before a retry).",
    type: "gauge",
    samples: metrics.queues.map((q) =>
      sample("prismq_queue_scheduled_tasks", { queue: q.queue }, q.scheduled)
    ),
  }, {
    name: "prismq_queue_oldest_wait_seconds",
    help: "How long the longest-waiting runnable task of a queue has waited since it was due; 0 when none.",
    type: "gauge",
    samples: metrics.queues.map((q) =>
      sample("prismq_queue_oldest_wait_seconds", { queue: q.queue }, (q.oldestWaitMs ?? 0) / 1000)
    ),
  }, {
    name: "prismq_workers_live",
    help: "Workers whose last heartbeat is recent.",
    type: "gauge",
    samples: [sample("prismq_workers_live", {}, metrics.liveWorkers)],
  });
  return families.map((family) =>
    [
      `# HELP ${family.name} ${escapeHelp(family.help)}`,
      `# TYPE ${family.name} ${family.type}`,
      ...family.samples,
    ]
      .map((line) => `${line}\n`).join("")
  ).join("");
}

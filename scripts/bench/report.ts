/**
 * The benchmark's results: each figure's median and spread, compared with its target and with the best raw
 * baseline, as one JSON document or a markdown table headed by the machine it ran on.
 *
 * @module
 */
import os from "node:os";
import process from "node:process";
import type { Measured, Target } from "./context.ts";
import type { DatabaseInfo } from "./databases.ts";

/** A measured figure with its verdict. */
export interface Figure extends Measured {
  median: number;
  min: number;
  max: number;
  /** The best of the raw figures named by `baselineIds`. */
  baseline?: { id: string; median: number };
  /**
   * How near the baseline's speed: the median over rounds of run / baseline run (baseline / run for times,
   * in ms), or of the medians when the runs do not pair up.
   */
  ratio?: number;
  /**
   * Target met (where there is one) and, where there is a baseline, at least {@link MIN_RATIO} of it. Absent
   * for a figure with neither.
   */
  met?: boolean;
}

export interface Machine {
  runtime: string;
  cpu: string;
  cores: number;
  memoryBytes: number;
  date: string;
}

export interface BenchDocument {
  machine: Machine;
  /** The database the scenarios ran on, and its settings in force. */
  database: DatabaseInfo;
  mode: "full" | "tiny";
  runsPerScenario: number;
  binary: string;
  figures: Figure[];
  /** Correctness failures and scenarios that failed outright; any makes the run exit 1. */
  failures: string[];
  ok: boolean;
}

/** A figure with a baseline counts as met only at this share of it or more. */
export const MIN_RATIO = 0.5;

export function machine(): Machine {
  const g = globalThis as { Deno?: { version: { deno: string; v8: string } }; Bun?: { version: string } };
  const runtime = g.Deno
    ? `Deno ${g.Deno.version.deno} (V8 ${g.Deno.version.v8})`
    : g.Bun
    ? `Bun ${g.Bun.version}`
    : `Node ${process.version}`;
  const cpus = os.cpus();
  return {
    runtime,
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    date: new Date().toISOString(),
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function meets(target: Target, figure: { median: number; runs: number[] }): boolean {
  switch (target.op) {
    case ">=":
      return figure.median >= target.value;
    case "<=":
      return figure.median <= target.value;
    case "<":
      return figure.median < target.value;
    case "=":
      // A correctness count: one bad run is a failure, whatever the median says.
      return figure.runs.every((run) => run === target.value);
  }
}

/**
 * One figure per id from figures measured round by round: their runs in round order, and of their details,
 * per-run lists joined and the rest as the first round gave them.
 */
export function mergeRounds(measured: Measured[]): Measured[] {
  const byId = new Map<string, Measured>();
  for (const m of measured) {
    const seen = byId.get(m.id);
    if (!seen) {
      byId.set(m.id, { ...m, runs: [...m.runs], details: m.details && { ...m.details } });
      continue;
    }
    seen.runs.push(...m.runs);
    for (const [key, value] of Object.entries(m.details ?? {})) {
      const earlier = seen.details?.[key];
      if (Array.isArray(earlier) && Array.isArray(value)) seen.details![key] = [...earlier, ...value];
    }
  }
  return [...byId.values()];
}

/** Medians, baselines, ratios and verdicts for every measured figure. */
export function evaluate(measured: Measured[]): Figure[] {
  const figures: Figure[] = measured.map((m) => ({
    ...m,
    median: median(m.runs),
    min: Math.min(...m.runs),
    max: Math.max(...m.runs),
  }));
  const byId = new Map(figures.map((figure) => [figure.id, figure]));
  for (const figure of figures) {
    const candidates = (figure.baselineIds ?? []).flatMap((id) => byId.get(id) ?? []);
    if (candidates.length > 0) {
      // A time is better the lower it is; a rate, the higher.
      const isTime = figure.unit === "ms";
      const better = (a: Figure, b: Figure) => (isTime ? b.median < a.median : b.median > a.median);
      const best = candidates.reduce((a, b) => (better(a, b) ? b : a));
      figure.baseline = { id: best.id, median: best.median };
      const ratio = (mine: number, raw: number) => (isTime ? raw / mine : mine / raw);
      // Runs of one round met the machine in the same state: compare them pairwise where they pair up.
      figure.ratio = figure.runs.length === best.runs.length
        ? median(figure.runs.map((run, i) => ratio(run, best.runs[i])))
        : ratio(figure.median, best.median);
    }
    if (figure.target || figure.baseline) {
      figure.met = (!figure.target || meets(figure.target, figure)) && (figure.ratio ?? 1) >= MIN_RATIO;
    }
  }
  // Second pass: a figure that requires others is met only when they are.
  for (const figure of figures) {
    if (figure.met === undefined || !figure.requires) continue;
    figure.met &&= figure.requires.every((id) => byId.get(id)?.met === true);
  }
  return figures;
}

function formatValue(value: number, unit: string): string {
  if (unit === "tasks/s" || unit === "tasks") return Math.round(value).toLocaleString("en");
  if (unit === "ms") return value < 10 ? value.toFixed(2) : value.toFixed(1);
  return value.toFixed(1);
}

function withUnit(value: number, unit: string): string {
  return `${formatValue(value, unit)} ${unit}`;
}

function resultCell(figure: Figure): string {
  const value = withUnit(figure.median, figure.unit);
  if (figure.runs.length === 1) return value;
  if (figure.target?.op === "=") return `${value} (runs: ${figure.runs.join(", ")})`;
  return `${value} (${formatValue(figure.min, figure.unit)}–${formatValue(figure.max, figure.unit)})`;
}

function targetCell(target: Target | undefined, unit: string): string {
  if (!target) return "—";
  const op = { ">=": "≥", "<=": "≤", "<": "<", "=": "=" }[target.op];
  return `${op} ${target.value.toLocaleString("en")} ${unit}`;
}

/** "Database: PostgreSQL at … (fsync on, …)". */
function databaseLine({ kind, location, settings }: DatabaseInfo): string {
  const list = Object.entries(settings).map(([name, value]) => `${name} ${value}`).join(", ");
  return `Database: ${kind === "sqlite" ? "SQLite" : "PostgreSQL"}, ${location}; settings in force: ${list}.`;
}

export function markdown(doc: BenchDocument): string {
  const { machine: m } = doc;
  const lines = [
    `# PrismQ benchmark${doc.mode === "tiny" ? " (--tiny)" : ""}`,
    "",
    `${m.runtime} · ${m.cpu} · ${m.cores} cores · ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB · ${m.date}`,
    "",
    databaseLine(doc.database),
    "",
    `Median of ${doc.runsPerScenario} run${doc.runsPerScenario === 1 ? "" : "s"} ` +
    `(min–max in brackets), each on a fresh database ` +
    `(${doc.database.kind === "sqlite" ? "file" : "schema"}), one run of every scenario per round. ` +
    `Binary: ${doc.binary}. "% of raw" is the median over rounds of our speed over the baseline's ` +
    `(for a time, the baseline's time over ours); "Met?" needs the target, where there is one, and at least ` +
    `${MIN_RATIO * 100} % of raw where there is a baseline.`,
    "",
    "| Scenario | Result | Target | Raw baseline | % of raw | Met? |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const f of doc.figures) {
    const baseline = f.baseline ? `${f.baseline.id}: ${withUnit(f.baseline.median, f.unit)}` : "—";
    const ratio = f.ratio === undefined ? "—" : `${(100 * f.ratio).toFixed(0)} %`;
    const met = f.met === undefined ? "—" : f.met ? "yes" : "**no**";
    lines.push(
      `| ${f.id} ${f.label} | ${resultCell(f)} | ${
        targetCell(f.target, f.unit)
      } | ${baseline} | ${ratio} | ${met} |`,
    );
  }
  if (doc.failures.length > 0) {
    lines.push("", "Failures:", ...doc.failures.map((failure) => `- ${failure}`));
  }
  return lines.join("\n");
}

/**
 * What every benchmark scenario is given (its sizes, fresh databases, the compiled binary) and what it
 * gives back: the figures it measured, one value per run, before they meet their targets and baselines.
 *
 * @module
 */
import type { BenchDatabases } from "./databases.ts";

/** How big each scenario is, and how often it runs. */
export interface Sizes {
  /**
   * Runs of every scenario; the median is reported. The bench runs the whole list this many times, one run
   * of each scenario per round, so that a scenario and its raw baseline meet the machine in the same state.
   */
  runs: number;
  /** S1 and R1: awaited one-task enqueues. */
  single: number;
  /** S2 and R2: tasks enqueued in bulk. */
  bulk: number;
  /** S2: tasks per `enqueueMany` call. */
  bulkChunk: number;
  /** S3, S4 and R3: tasks drained. */
  drain: number;
  /** S5: tasks enqueued one by one into an idle worker. */
  latencyTasks: number;
  /** S5: how long the worker idles before its CPU use is sampled, and over how long. */
  idleSettleMs: number;
  idleWindowMs: number;
  /**
   * S6: completed tasks where the first window of memory readings starts, and in all (where the last one
   * ends); and how many completions each window spans.
   */
  memoryFirst: number;
  memoryTotal: number;
  memoryWindow: number;
}

export const FULL: Sizes = {
  runs: 3,
  single: 5_000,
  bulk: 100_000,
  bulkChunk: 10_000,
  drain: 50_000,
  latencyTasks: 500,
  idleSettleMs: 1_000,
  idleWindowMs: 3_000,
  memoryFirst: 10_000,
  memoryTotal: 200_000,
  memoryWindow: 20_000,
};

/** For CI: every scenario once, small enough to finish in seconds. */
export const TINY: Sizes = {
  runs: 1,
  single: 200,
  bulk: 5_000,
  bulkChunk: 10_000,
  drain: 3_000,
  latencyTasks: 20,
  idleSettleMs: 500,
  idleWindowMs: 1_000,
  memoryFirst: 1_000,
  memoryTotal: 5_000,
  memoryWindow: 1_000,
};

/** A goal for a figure. An exact ("=") target is a correctness count, which every run must meet. */
export interface Target {
  op: ">=" | "<=" | "<" | "=";
  value: number;
}

/** One figure as a scenario measured it. */
export interface Measured {
  /** "S1", "S5.p95", "R1'": the scenario, and which of its figures. */
  id: string;
  label: string;
  unit: string;
  /** One value per run. */
  runs: number[];
  target?: Target;
  /** Raw-driver figures this one is compared with; the best of them is its baseline. */
  baselineIds?: string[];
  /** Figures that must be met as well for this one to count as met (S4: no duplicates, no losses). */
  requires?: string[];
  /** Facts that are not speeds: tasks expected and completed per run, where memory was sampled. */
  details?: Record<string, unknown>;
}

export interface BenchContext {
  sizes: Sizes;
  /** The compiled `prismq` executable. */
  binary: string;
  /** The folder everything is written in; removed at the end. */
  dir: string;
  /** Where the databases are: SQLite files in that folder, or schemas on a PostgreSQL server. */
  db: BenchDatabases;
  /** Records a correctness failure (lost or duplicated tasks, a worker that failed): the bench exits 1. */
  fail(message: string): void;
}

/**
 * What a scenario's main figure is held to, on the database the bench runs on: a target (none where only
 * its raw baseline counts), and the raw figures it is compared with.
 */
export interface Goal {
  target?: Target;
  baselineIds: string[];
}

/** A scenario: runs itself `sizes.runs` times (or as it says) and returns its figures. */
export type Scenario = (ctx: BenchContext) => Promise<Measured[]>;

/** Runs `fn` once per run, one after another, and returns the results in order. */
export async function eachRun<T>(runs: number, fn: (run: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let run = 1; run <= runs; run++) results.push(await fn(run));
  return results;
}

/** Tasks per second for `tasks` done in `ms` milliseconds. */
export function perSecond(tasks: number, ms: number): number {
  return tasks / (Math.max(ms, 0.001) / 1000);
}

/**
 * The benchmark's scenarios for each database, in report order (each raw baseline after the scenarios it is
 * compared with), with the targets each is held to there. PrismQ's scenarios are the same on both; their
 * targets and raw baselines are the database's own: a PostgreSQL server commits every transaction to disk
 * (`synchronous_commit`), a SQLite file in WAL mode with `synchronous=NORMAL` does not.
 *
 * @module
 */
import type { Scenario, Target } from "./context.ts";
import { enqueueBulk, enqueueNdjson, enqueueSingle } from "./enqueue.ts";
import { latency, rawLatency, SQLITE_RAW_HANDOFF, SQLITE_RAW_HOW } from "./latency.ts";
import { limitedDrain } from "./limited_drain.ts";
import { rawBulkInsert, rawDrain, rawSingleInsert } from "./raw.ts";
import * as pg from "./raw_postgres.ts";
import { drainMemory, drainOneProcess, drainProcesses, startToFirstClaim } from "./worker_process.ts";

const atLeast = (value: number): Target => ({ op: ">=", value });
const atMost = (value: number): Target => ({ op: "<=", value });

/** A scenario's name starts with the id `--only` selects it by. */
export type NamedScenario = [name: string, scenario: Scenario];

export const SQLITE_SCENARIOS: NamedScenario[] = [
  ["S1 enqueue, single", enqueueSingle({ target: atLeast(40_000), baselineIds: ["R1", "R1'"] })],
  ["R1 raw single insert", rawSingleInsert],
  ["S2 enqueue, bulk", enqueueBulk({ target: atLeast(400_000), baselineIds: ["R2", "R2'"] })],
  [
    "S2 enqueue, NDJSON through the CLI",
    enqueueNdjson({ target: atLeast(400_000), baselineIds: ["R2", "R2'"] }),
  ],
  ["R2 raw bulk insert", rawBulkInsert],
  ["S3 drain, one process", drainOneProcess({ target: atLeast(30_000), baselineIds: ["R3", "R3'"] })],
  ["S4 drain, two processes", drainProcesses(2, { target: atLeast(30_000), baselineIds: ["R3", "R3'"] })],
  ["R3 raw drain", rawDrain],
  [
    "S5 latency and idle CPU",
    latency({
      p50: { target: atMost(1), baselineIds: ["R5"] },
      p95: { target: atMost(5), baselineIds: ["R5.p95"] },
    }),
  ],
  ["R5 raw latency", rawLatency(SQLITE_RAW_HANDOFF, SQLITE_RAW_HOW)],
  ["S6 memory", drainMemory],
  ["S7 start to first claim", startToFirstClaim],
  ["S8 drain through a limited queue", limitedDrain],
];

/** Worker processes of S4 and R4 on PostgreSQL. */
const PG_DRAIN_PROCESSES = 4;

/**
 * On PostgreSQL, the targets of issue 14, on a 2-core machine with the server on it: bulk enqueue ≥ 100,000
 * tasks/s, four workers draining ≥ 20,000 tasks/s with no task lost or run twice, latency p50 ≤ 3 ms and
 * p95 ≤ 10 ms; and every figure at least half of its raw baseline (the single enqueue and the one-process
 * drain are held to that alone).
 */
export const POSTGRES_SCENARIOS: NamedScenario[] = [
  ["S1 enqueue, single", enqueueSingle({ baselineIds: ["R1"] })],
  ["R1 raw single insert", pg.rawSingleInsert],
  ["S2 enqueue, bulk", enqueueBulk({ target: atLeast(100_000), baselineIds: ["R2", "R2'"] })],
  [
    "S2 enqueue, NDJSON through the CLI",
    enqueueNdjson({ target: atLeast(100_000), baselineIds: ["R2", "R2'"] }),
  ],
  ["R2 raw bulk insert", pg.rawBulkInsert],
  ["S3 drain, one process", drainOneProcess({ baselineIds: ["R3", "R3'"] })],
  [
    "S4 drain, four processes",
    drainProcesses(PG_DRAIN_PROCESSES, { target: atLeast(20_000), baselineIds: ["R4", "R4'"] }),
  ],
  ["R3 raw drain, one process", pg.rawDrain("R3", 1)],
  ["R4 raw drain, four processes", pg.rawDrain("R4", PG_DRAIN_PROCESSES)],
  [
    "S5 latency and idle CPU",
    latency({
      p50: { target: atMost(3), baselineIds: ["R5"] },
      p95: { target: atMost(10), baselineIds: ["R5.p95"] },
    }),
  ],
  ["R5 raw latency", rawLatency(pg.POSTGRES_RAW_HANDOFF, pg.POSTGRES_RAW_HOW)],
  ["S6 memory", drainMemory],
  ["S7 start to first claim", startToFirstClaim],
  ["S8 drain through a limited queue", limitedDrain],
];

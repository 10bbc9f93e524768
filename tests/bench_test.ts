/**
 * `deno task bench --tiny --json` runs every scenario to the end and reports each figure, on SQLite files
 * and, where PostgreSQL is available, on the test run's server (`--db postgres://…`). Checks what the bench
 * measured and that its correctness checks held, never a speed: CI machines vary too much for that.
 *
 * @module
 */

// Not rerun on libsql: it checks that the benchmark runs to the end, not the engines, which the rest of the suite runs on both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type BenchDocument, evaluate, type Figure, mergeRounds } from "../scripts/bench/report.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));

/** The build takes 10–20 s and the tiny scenarios well under a minute; this only stops a hung bench. */
const BENCH_DEADLINE_MS = 300_000;

const SCENARIOS = ["S1", "S2", "S2.cli", "S3", "S4", "S5", "S7"];

/** Runs `bench --tiny --json` with `args`, and checks that it ran to the end and found nothing wrong. */
async function tinyBench(args: string[]): Promise<(id: string) => Figure> {
  const output = await new Deno.Command("npx", {
    args: ["deno", "run", "-A", "scripts/bench.ts", "--tiny", "--json", ...args],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(BENCH_DEADLINE_MS),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `the bench failed:\n${stderr}\n${stdout}`);
  const doc = JSON.parse(stdout) as BenchDocument;
  assert.equal(doc.mode, "tiny");
  assert.deepEqual(doc.failures, []);
  return (id) => {
    const found = doc.figures.find((f) => f.id === id);
    assert.ok(found, `${id} is in the report`);
    return found;
  };
}

/** What every run must show, on any database: each figure measured, no task lost or run twice. */
function assertComplete(figure: (id: string) => Figure, rawBaselines: string[], comparedWithRaw: string[]) {
  const assertPositive = (id: string) => {
    const { median, runs } = figure(id);
    assert.ok(Number.isFinite(median) && median > 0, `${id} has a finite positive median, got ${median}`);
    assert.ok(runs.length >= 1, `${id} has its runs`);
  };
  for (const id of [...SCENARIOS, ...rawBaselines]) assertPositive(id);
  for (const id of ["S3", "S4"]) {
    const { details } = figure(id);
    const { tasks, completed } = details as { tasks: number; completed: number[] };
    assert.ok(tasks > 0);
    assert.deepEqual(completed, completed.map(() => tasks), `${id} completed all ${tasks} tasks`);
  }
  assert.ok(figure("S4.duplicates").runs.every((n) => n === 0), "S4: no task ran twice");
  assert.ok(figure("S4.losses").runs.every((n) => n === 0), "S4: no task was lost");
  // Growth may be zero or negative; the two samples it is made of may not.
  assertPositive("S6.rssFirst");
  assertPositive("S6.rssEnd");
  assert.ok(Number.isFinite(figure("S6").median), "S6 has its growth");
  for (const id of comparedWithRaw) {
    assert.ok(figure(id).baseline, `${id} is compared with a raw baseline`);
    assert.ok(Number.isFinite(figure(id).ratio), `${id} has a ratio to its baseline`);
  }
}

test("bench --tiny --json: every scenario and baseline measured, no task lost or run twice", async () => {
  const figure = await tinyBench([]);
  assertComplete(figure, ["R1", "R1'", "R2", "R2'", "R3", "R3'", "R5"], ["S1", "S2", "S3", "S4", "S5"]);
});

test(
  "bench --tiny --json --db postgres://…: every scenario and baseline measured on PostgreSQL, no task lost or run twice",
  { skip: postgresUnavailable() },
  async () => {
    // A database of the test's own on the run's server; the bench makes a schema in it per scenario.
    const { url, drop } = await freshDatabase();
    try {
      const figure = await tinyBench(["--db", url]);
      assertComplete(
        figure,
        ["R1", "R2", "R2'", "R3", "R3'", "R4", "R4'", "R5"],
        ["S1", "S2", "S2.cli", "S3", "S4", "S5", "S5.p95"],
      );
      assert.match(
        figure("S4").baseline?.id ?? "",
        /^R4/,
        "four workers are compared with the raw loop in four",
      );
    } finally {
      await drop();
    }
  },
);

test("rounds merge into one figure per id; % of raw pairs each round's run with its baseline's", () => {
  /** One round's figures: S3 and its baseline R3 (tasks/s), S5 and its baseline R5 (ms). */
  const round = (s3: number, completed: number, r3: number, s5: number, r5: number) => [
    {
      id: "S3",
      label: "drain",
      unit: "tasks/s",
      runs: [s3],
      baselineIds: ["R3"],
      details: { tasks: 5, completed: [completed] },
    },
    { id: "R3", label: "raw drain", unit: "tasks/s", runs: [r3] },
    {
      id: "S5",
      label: "latency",
      unit: "ms",
      runs: [s5],
      baselineIds: ["R5"],
      target: { op: "<=" as const, value: 3 },
    },
    { id: "R5", label: "raw latency", unit: "ms", runs: [r5] },
  ];
  const rounds = [...round(10, 5, 20, 4, 2), ...round(20, 4, 20, 2, 2), ...round(30, 5, 60, 3, 1)];
  const merged = mergeRounds(rounds);
  assert.deepEqual(merged.map((m) => m.id), ["S3", "R3", "S5", "R5"]);
  assert.deepEqual(merged[0].runs, [10, 20, 30]);
  assert.deepEqual(merged[0].details, { tasks: 5, completed: [5, 4, 5] });
  assert.deepEqual(rounds[0].runs, [10], "the rounds themselves are left as they were");
  const [s3, , s5] = evaluate(merged);
  // Rounds: 10/20, 20/20, 30/60; the medians alone (20/20) would say 100 %.
  assert.equal(s3.ratio, 0.5);
  assert.equal(s3.baseline?.median, 20);
  // Times: the baseline's over ours, per round: 2/4, 2/2, 1/3.
  assert.equal(s5.ratio, 0.5);
  assert.equal(s5.median, 3);
  assert.equal(s5.met, true);
});

test("a figure with a raw baseline and no target is met at half of raw or more; one with neither has no verdict", () => {
  const [slow, , fast, , alone] = evaluate([
    { id: "S1", label: "single", unit: "tasks/s", runs: [40], baselineIds: ["R1"] },
    { id: "R1", label: "raw single", unit: "tasks/s", runs: [100] },
    { id: "S3", label: "drain", unit: "tasks/s", runs: [50], baselineIds: ["R3"] },
    { id: "R3", label: "raw drain", unit: "tasks/s", runs: [100] },
    { id: "S5.max", label: "latency, max", unit: "ms", runs: [3] },
  ]);
  assert.equal(slow.met, false);
  assert.equal(fast.met, true);
  assert.equal(alone.met, undefined);
});

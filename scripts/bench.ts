/**
 * `deno task bench`: PrismQ's speed, latency and memory on real database files, next to raw-driver
 * baselines measured in the same run on the same schema. Every scenario runs on fresh files, three times
 * (in three rounds through the whole list); the median is reported. Workers are separate processes: the compiled `prismq` (built first when
 * dist/prismq is missing or older than its sources) or scripts/bench/latency_worker.ts.
 *
 * Exits 1 only when tasks were lost or run twice, or a scenario failed outright; a missed speed target is
 * reported as not met.
 *
 * Usage: deno task bench [--json] [--out results.json] [--tiny] [--only S3,R3]
 *   --json  print one JSON document instead of the markdown table
 *   --out   also write that JSON document to a file
 *   --tiny  every scenario once, at a small size (for CI); builds in a temporary folder, not dist/
 *   --only  just the scenarios whose ids are given (S1 to S7; R1, R2, R3, R5), comma-separated
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { prismqBinary } from "./bench/binary.ts";
import { type BenchContext, FULL, type Measured, type Scenario, TINY } from "./bench/context.ts";
import { enqueueBulk, enqueueNdjson, enqueueSingle } from "./bench/enqueue.ts";
import { latency, rawLatency } from "./bench/latency.ts";
import { killAll } from "./bench/processes.ts";
import { rawBulkInsert, rawDrain, rawSingleInsert } from "./bench/raw.ts";
import { type BenchDocument, evaluate, machine, markdown, mergeRounds } from "./bench/report.ts";
import {
  drainMemory,
  drainOneProcess,
  drainTwoProcesses,
  startToFirstClaim,
} from "./bench/worker_process.ts";

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    out: { type: "string" },
    tiny: { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const sizes = args.tiny ? TINY : FULL;

/** In report order; each raw baseline follows the scenarios it is compared with. */
const SCENARIOS: [string, Scenario][] = [
  ["S1 enqueue, single", enqueueSingle],
  ["R1 raw single insert", rawSingleInsert],
  ["S2 enqueue, bulk", enqueueBulk],
  ["S2 enqueue, NDJSON through the CLI", enqueueNdjson],
  ["R2 raw bulk insert", rawBulkInsert],
  ["S3 drain, one process", drainOneProcess],
  ["S4 drain, two processes", drainTwoProcesses],
  ["R3 raw drain", rawDrain],
  ["S5 latency and idle CPU", latency],
  ["R5 raw latency", rawLatency],
  ["S6 memory", drainMemory],
  ["S7 start to first claim", startToFirstClaim],
];

/** The scenarios `--only` names, by the id their name starts with; all of them without it. */
function selected(only: string | undefined): [string, Scenario][] {
  if (only === undefined) return SCENARIOS;
  const ids = only.split(",").map((id) => id.trim().toUpperCase()).filter((id) => id !== "");
  const known = new Set(SCENARIOS.map(([name]) => name.split(" ")[0]));
  const unknown = ids.filter((id) => !known.has(id));
  if (ids.length === 0 || unknown.length > 0) {
    console.error(
      `--only: unknown scenario ${unknown.join(", ") || "(none given)"}. Known: ${[...known].join(", ")}.`,
    );
    process.exit(2);
  }
  return SCENARIOS.filter(([name]) => ids.includes(name.split(" ")[0]));
}
const scenarios = selected(args.only);

const dir = mkdtempSync(join(tmpdir(), "prismq-bench-"));
const cleanUp = () => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
};
process.on("SIGINT", () => {
  cleanUp();
  process.exit(130);
});

const failures: string[] = [];
const measured: Measured[] = [];
let binary = "";
try {
  binary = await prismqBinary({ scratchDir: dir, keepDistUntouched: args.tiny });
  let files = 0;
  const ctx: BenchContext = {
    sizes,
    binary,
    dir,
    newPath: (name) => join(dir, `${name}-${++files}.db`),
    fail: (message) => failures.push(message),
  };
  // Round by round, one run of every scenario in each: a slow spell of the machine then touches a scenario
  // and its baseline alike instead of all the runs of one of them.
  const failed = new Set<string>();
  for (let round = 1; round <= sizes.runs; round++) {
    const roundCtx: BenchContext = { ...ctx, sizes: { ...sizes, runs: 1 } };
    for (const [name, scenario] of scenarios) {
      if (failed.has(name)) continue;
      const started = performance.now();
      process.stderr.write(`${sizes.runs > 1 ? `round ${round}/${sizes.runs}: ` : ""}${name}…`);
      try {
        measured.push(...await scenario(roundCtx));
        process.stderr.write(` ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
      } catch (error) {
        process.stderr.write(" failed\n");
        failed.add(name);
        failures.push(`${name}: ${(error as Error).message}`);
      }
    }
  }
} catch (error) {
  failures.push((error as Error).message);
} finally {
  cleanUp();
}

const doc: BenchDocument = {
  machine: machine(),
  mode: args.tiny ? "tiny" : "full",
  runsPerScenario: sizes.runs,
  binary,
  figures: evaluate(mergeRounds(measured)),
  failures,
  ok: failures.length === 0,
};
const json = JSON.stringify(doc, null, 2);
if (args.out) writeFileSync(args.out, json + "\n");
console.log(args.json ? json : markdown(doc));
process.exit(doc.ok ? 0 : 1);

/**
 * `deno task bench`: PrismQ's speed, latency and memory on real databases, next to raw-driver baselines
 * measured in the same run on the same schema. Every scenario runs on a fresh database, three times (in
 * three rounds through the whole list); the median is reported. Workers are separate processes: the
 * compiled `prismq` (built first when dist/prismq is missing or older than its sources) or scripts in
 * scripts/bench/.
 *
 * Exits 1 only when tasks were lost or run twice, or a scenario failed outright; a missed speed target is
 * reported as not met.
 *
 * Usage: deno task bench [--db sqlite|postgres|postgres://…] [--json] [--out results.json] [--tiny]
 *          [--only S3,R3] [--runs 5] [--binary path/to/prismq]
 *   --db    sqlite (the default): fresh SQLite files in a temporary folder; postgres: a throwaway
 *           PostgreSQL server the bench starts (127.0.0.1, free port, default durability); postgres://…:
 *           that server, each scenario in a schema of its own, dropped afterwards
 *   --json  print one JSON document instead of the markdown table
 *   --out   also write that JSON document to a file
 *   --tiny  every scenario once, at a small size (for CI); builds in a temporary folder, not dist/
 *   --only  just the scenarios whose ids are given (S1 to S7; R1 to R5), comma-separated
 *   --runs  rounds through the scenarios (3 by default, 1 with --tiny)
 *   --binary  that compiled `prismq` instead of dist/prismq (to compare two builds in turn)
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { prismqBinary } from "./bench/binary.ts";
import { type BenchContext, FULL, type Measured, TINY } from "./bench/context.ts";
import { type BenchDatabases, sqliteFiles } from "./bench/databases.ts";
import { isPostgres, postgresDatabases } from "./bench/postgres.ts";
import { killAll } from "./bench/processes.ts";
import { type BenchDocument, evaluate, machine, markdown, mergeRounds } from "./bench/report.ts";
import { type NamedScenario, POSTGRES_SCENARIOS, SQLITE_SCENARIOS } from "./bench/scenarios.ts";

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    out: { type: "string" },
    tiny: { type: "boolean", default: false },
    only: { type: "string" },
    db: { type: "string", default: "sqlite" },
    runs: { type: "string" },
    binary: { type: "string" },
  },
});
if (args.db !== "sqlite" && !isPostgres(args.db)) {
  console.error(`--db: '${args.db}' is neither sqlite, postgres, nor a postgres:// URL.`);
  process.exit(2);
}
const onPostgres = isPostgres(args.db);
const runs = args.runs === undefined ? undefined : Number(args.runs);
if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1)) {
  console.error(`--runs: '${args.runs}' is not a whole number of at least 1.`);
  process.exit(2);
}
if (args.binary !== undefined && !existsSync(args.binary)) {
  console.error(`--binary: '${args.binary}' does not exist.`);
  process.exit(2);
}
const sizes = { ...(args.tiny ? TINY : FULL), ...(runs === undefined ? {} : { runs }) };

/** The scenarios `--only` names, by the id their name starts with; all of them without it. */
function selected(only: string | undefined): NamedScenario[] {
  const SCENARIOS = onPostgres ? POSTGRES_SCENARIOS : SQLITE_SCENARIOS;
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
let databases: BenchDatabases | undefined;
const cleanUp = async () => {
  killAll();
  await databases?.close();
  rmSync(dir, { recursive: true, force: true });
};
process.on("SIGINT", async () => {
  await cleanUp();
  process.exit(130);
});

const failures: string[] = [];
const measured: Measured[] = [];
let binary = "";
let database: BenchDocument["database"] = { kind: "sqlite", location: "(none)", settings: {} };
try {
  databases = onPostgres ? await postgresDatabases(args.db) : sqliteFiles(dir);
  database = await databases.describe();
  binary = args.binary !== undefined
    ? resolve(args.binary)
    : await prismqBinary({ scratchDir: dir, keepDistUntouched: args.tiny });
  const ctx: BenchContext = {
    sizes,
    binary,
    dir,
    db: databases,
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
  await cleanUp();
}

const doc: BenchDocument = {
  machine: machine(),
  database,
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

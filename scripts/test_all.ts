/**
 * The whole test suite: every test on Deno (files on `node:sqlite`); every test file again on Deno with the
 * `libsql` engine; the store conformance suite and the runtime smoke test on Bun (whose `node:sqlite` is
 * its own, and runs the compiled binary); the smoke test on Node (through tsx). Echoes each runner's
 * output, then prints one line `N passed, N failed` summed over all of them.
 *
 * No list says which files run again on `libsql`: all do, found as `deno test` finds them, except
 * - tests/conformance/, which runs every store and engine itself, in one process;
 * - a file that says, on a line of its own, `// Not rerun on libsql: <why>` (the reason is printed).
 * So a new test runs on both engines unless its own file says why not.
 *
 * One PostgreSQL server serves the whole run: started here (a fresh cluster on 127.0.0.1, about a second),
 * its URL handed to every runner in PRISMQ_TEST_POSTGRES_URL (each test makes a database of its own on
 * it), and stopped at the end. Where PostgreSQL is not installed, its tests are skipped and say why.
 *
 * Usage: deno run -A scripts/test_all.ts [extra arguments for deno test]
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { findPostgres, type PostgresServer, startPostgres } from "../tests/fixtures/postgres_server.ts";
import { POSTGRES_URL_ENV } from "../tests/_postgres.ts";

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

interface Run {
  name: string;
  command: string[];
  env?: Record<string, string>;
  count: (output: string) => Counts;
}

const number = (output: string, pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? 0);
const bin = (name: string) => `node_modules/.bin/${name}`;

// "ok | 40 passed (12 steps) | 0 failed | 1 ignored (3 steps)": tests and their steps both count.
function denoCounts(output: string): Counts {
  const clean = output.split("\n").reverse().find((l) => /\d+ passed.*\| \d+ failed/.test(l)) ?? "";
  return {
    passed: number(clean, /(\d+) passed/) + number(clean, /passed \((\d+) steps?\)/),
    failed: number(clean, /(\d+) failed/) + number(clean, /failed \((\d+) steps?\)/),
    skipped: number(clean, /(\d+) ignored/) + number(clean, /ignored \((\d+) steps?\)/),
  };
}

/** The test files under `dir`, by the names `deno test` looks for. */
function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return /(^|[._])test\.[cm]?[jt]sx?$/.test(entry.name) ? [path] : [];
  }).sort();
}

/** The store conformance suite, which chooses its stores and engines itself. */
const CONFORMANCE = join("tests", "conformance");
const NOT_RERUN = /^\/\/ Not rerun on libsql: (.+)$/m;

/** Every test file but the conformance suite's and those that say why they need not run again. */
function libsqlFiles(): string[] {
  return testFiles("tests").filter((file) => {
    if (file.startsWith(CONFORMANCE + "/")) return false;
    const why = NOT_RERUN.exec(readFileSync(file, "utf8"))?.[1];
    if (why !== undefined) console.log(`not rerun on libsql: ${file}: ${why}`);
    return why === undefined;
  });
}

const runs: Run[] = [
  {
    name: "deno",
    command: [process.execPath, "test", "-A", "--parallel", ...process.argv.slice(2), "tests/"],
    count: denoCounts,
  },
  {
    name: "deno, libsql engine",
    command: [process.execPath, "test", "-A", "--parallel", ...process.argv.slice(2), ...libsqlFiles()],
    env: { PRISMQ_SQLITE_ENGINE: "libsql" },
    count: denoCounts,
  },
  {
    name: "bun",
    // Bun gives a test 5 s unless told otherwise; the model test on the libSQL server stand-in takes more.
    command: [
      bin("bun"),
      "test",
      "--timeout",
      "300000",
      "./tests/runtime_smoke_test.ts",
      `./${CONFORMANCE}/`,
    ],
    count: (output) => ({
      passed: number(output, /^\s*(\d+) pass$/m),
      failed: number(output, /^\s*(\d+) fail$/m),
      skipped: number(output, /^\s*(\d+) skip$/m),
    }),
  },
  {
    name: "node",
    command: [bin("tsx"), "--test", "tests/runtime_smoke_test.ts"],
    count: (output) => ({
      passed: number(output, /^# pass (\d+)$/m),
      failed: number(output, /^# fail (\d+)$/m),
      skipped: number(output, /^# skipped (\d+)$/m),
    }),
  },
];

function execute(run: Run): Promise<Counts> {
  const env = Object.entries(run.env ?? {}).map(([key, value]) => `${key}=${value} `).join("");
  console.log(`\n=== ${run.name}: ${env}${run.command.join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(run.command[0], run.command.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", ...run.env },
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
      process.stderr.write(chunk);
    });
    child.on("error", (error) => {
      console.error(`${run.name}: could not start: ${error.message}`);
      resolve({ passed: 0, failed: 1, skipped: 0 });
    });
    child.on("exit", (code) => {
      const counts = run.count(output);
      // A runner that failed without reporting a failed test still counts as one failure.
      if (code !== 0 && counts.failed === 0) counts.failed = 1;
      resolve(counts);
    });
  });
}

let passed = 0;
let failed = 0;
let skipped = 0;

/** The run's PostgreSQL server, when PostgreSQL is installed and no URL was given. */
async function postgresForRun(): Promise<PostgresServer | undefined> {
  if (process.env[POSTGRES_URL_ENV]) return undefined;
  const found = findPostgres();
  if ("unavailable" in found) {
    console.log(`PostgreSQL tests are skipped: ${found.unavailable}`);
    return undefined;
  }
  const started = performance.now();
  try {
    const server = await startPostgres();
    console.log(
      `PostgreSQL for this run: ${server.url} (started in ${Math.round(performance.now() - started)} ms)`,
    );
    return server;
  } catch (error) {
    // Its tests then start servers of their own, and fail with the reason if those cannot start either.
    console.error(`Could not start PostgreSQL for this run: ${(error as Error).message}`);
    failed++;
    return undefined;
  }
}

const postgres = await postgresForRun();
try {
  for (const run of runs) {
    const counts = await execute(
      postgres ? { ...run, env: { ...run.env, [POSTGRES_URL_ENV]: postgres.url } } : run,
    );
    passed += counts.passed;
    failed += counts.failed;
    skipped += counts.skipped;
  }
} finally {
  postgres?.stop();
}
console.log(`\n${skipped} skipped (a conformance test says why in its name: "… (skipped: <why>)")`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

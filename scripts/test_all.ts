/**
 * The whole test suite: every test on Deno, the tests that reach the database again on Deno with the
 * `libsql` engine (Deno itself runs files on `node:sqlite`; Node 20 runs them on `libsql`), and the runtime
 * smoke test on Bun and on Node (through tsx). Echoes each runner's output, then prints one line
 * `N passed, N failed` summed over all of them.
 *
 * Usage: deno run -A scripts/test_all.ts [extra arguments for deno test]
 */
import { spawn } from "node:child_process";
import process from "node:process";

interface Run {
  name: string;
  command: string[];
  env?: Record<string, string>;
  count: (output: string) => { passed: number; failed: number };
}

const number = (output: string, pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? 0);
const bin = (name: string) => `node_modules/.bin/${name}`;

// "ok | 40 passed (12 steps) | 0 failed": tests and their steps both count.
function denoCounts(output: string): { passed: number; failed: number } {
  const clean = output.split("\n").reverse().find((l) => /\d+ passed.*\| \d+ failed/.test(l)) ?? "";
  return {
    passed: number(clean, /(\d+) passed/) + number(clean, /passed \((\d+) steps?\)/),
    failed: number(clean, /(\d+) failed/) + number(clean, /failed \((\d+) steps?\)/),
  };
}

/** The tests whose outcome depends on the SQLite engine under the store. */
const ENGINE_TESTS = [
  "busy_test.ts",
  "crash_test.ts",
  "enqueue_in_transaction_test.ts",
  "local_driver_test.ts",
  "lease_test.ts",
  "multiprocess_test.ts",
  "prefetch_test.ts",
  "queue_test.ts",
  "state_machine_property_test.ts",
  "transaction_test.ts",
  "wake_test.ts",
  "worker_test.ts",
].map((file) => `tests/${file}`);

const runs: Run[] = [
  {
    name: "deno",
    command: [process.execPath, "test", "-A", "--parallel", ...process.argv.slice(2), "tests/"],
    count: denoCounts,
  },
  {
    name: "deno, libsql engine",
    command: [process.execPath, "test", "-A", "--parallel", ...process.argv.slice(2), ...ENGINE_TESTS],
    env: { PRISMQ_SQLITE_ENGINE: "libsql" },
    count: denoCounts,
  },
  {
    name: "bun",
    command: [bin("bun"), "test", "./tests/runtime_smoke_test.ts"],
    count: (output) => ({
      passed: number(output, /^\s*(\d+) pass$/m),
      failed: number(output, /^\s*(\d+) fail$/m),
    }),
  },
  {
    name: "node",
    command: [bin("tsx"), "--test", "tests/runtime_smoke_test.ts"],
    count: (output) => ({
      passed: number(output, /^# pass (\d+)$/m),
      failed: number(output, /^# fail (\d+)$/m),
    }),
  },
];

function execute(run: Run): Promise<{ passed: number; failed: number }> {
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
      resolve({ passed: 0, failed: 1 });
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
for (const run of runs) {
  const counts = await execute(run);
  passed += counts.passed;
  failed += counts.failed;
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

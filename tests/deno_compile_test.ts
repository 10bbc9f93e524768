/**
 * `deno task compile` builds a working binary. `deno compile` downloads its `denort` runtime, which these
 * machines cannot reach, so this runs only when `DENORT_BIN` names a local one; otherwise it is skipped.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { makeTempDir, REPO } from "./_helpers.ts";

test("deno compile builds a prismq that runs from an empty folder", { skip: !process.env.DENORT_BIN }, () => {
  const { dir, remove } = makeTempDir("prismq-compile-");
  try {
    const binary = join(dir, "prismq-deno");
    execFileSync(process.execPath, ["run", "-A", "scripts/compile.ts", "--output", binary], {
      cwd: REPO,
      stdio: "inherit",
    });
    const work = join(dir, "empty");
    execFileSync("mkdir", [work]);
    const run = (...args: string[]) =>
      execFileSync(binary, args, { cwd: work, encoding: "utf8", env: { PATH: process.env.PATH } });
    assert.match(run("--version"), /^prismq \d+\.\d+\.\d+/);
    assert.match(run("enqueue", "noop", '{"sleepMs": 1}'), /Enqueued task 1/);
    run("run", "--until-empty");
    assert.equal(JSON.parse(run("status", "--json")).counts.completed, 1);
  } finally {
    remove();
  }
});

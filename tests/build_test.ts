/**
 * The build refuses what it cannot link safely: a handler with a type error stops `npm run build` before
 * anything is compiled, and the manifest generator refuses handler files that would build a broken binary
 * (two of one type, a type that is not the file's name, a default export not made by `defineHandler`).
 *
 * Each test works on a copy of the repository's sources in a temporary folder (sharing its node_modules),
 * so the real handlers/ folder is never touched.
 *
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type Exit, REPO, start } from "./_binary.ts";
import { makeTempDir } from "./_helpers.ts";

/** A copy of what the build reads (sources, scripts, configuration) with the repository's node_modules. */
function repoCopy(): { dir: string; remove: () => void } {
  const { dir, remove } = makeTempDir("prismq-build-");
  for (const entry of ["mod.ts", "deno.json", "package.json", "src", "handlers", "scripts"]) {
    cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
  return { dir, remove };
}

function run(command: string, args: string[], cwd: string): Promise<Exit> {
  return start(command, args, { cwd, env: { ...process.env, NO_COLOR: "1" } as Record<string, string> }).done;
}

describe("npm run build", () => {
  let copy: { dir: string; remove: () => void };
  before(() => (copy = repoCopy()));
  after(() => copy.remove());

  test("stops at a handler's type error, shows it, and writes nothing to dist/", async () => {
    writeFileSync(
      join(copy.dir, "handlers", "greet.ts"),
      `import * as v from "valibot";
import { defineHandler } from "../mod.ts";

export default defineHandler({
  type: "greet",
  schema: v.object({ name: v.string() }),
  handle(task) {
    const length: number = task.payload.name;
    return length;
  },
});
`,
    );
    const build = await run("npm", ["run", "build"], copy.dir);
    const output = build.stdout + build.stderr;
    assert.notEqual(build.code, 0, output);
    assert.match(output, /TS2322/, "the type error is shown");
    assert.match(output, /handlers\/greet\.ts/, "with its file");
    assert.ok(!existsSync(join(copy.dir, "dist")), "nothing was compiled");
  });
});

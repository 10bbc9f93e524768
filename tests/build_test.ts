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

// Not rerun on libsql: it tests refusals of the build and of the manifest generator, which come before any database is opened.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { HandlerDefinition } from "../mod.ts";
import { handlers } from "../handlers/mod.ts";
import { assertOneLine, type Exit, REPO, start } from "./_binary.ts";
import { cli } from "./_cli.ts";
import { makeTempDir } from "./_helpers.ts";
import { manifest } from "../scripts/gen_manifest.ts";

const DENO = join(REPO, "node_modules", ".bin", "deno");

/** A copy of what the build reads (sources, scripts, configuration) with the repository's node_modules. */
function repoCopy(): { dir: string; remove: () => void } {
  const { dir, remove } = makeTempDir("prismq-build-");
  for (const entry of ["mod.ts", "deno.json", "package.json", "src", "handlers", "scripts"]) {
    cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
  return { dir, remove };
}

/** A handler file's text: `defineHandler` with this type, plus `extra` lines. */
function handlerSource(type: string, extra = ""): string {
  return `import * as v from "valibot";
import { defineHandler } from "../mod.ts";
${extra}
export default defineHandler({
  type: ${JSON.stringify(type)},
  schema: v.object({ name: v.string() }),
  handle(task) {
    return task.payload.name;
  },
});
`;
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

describe("the manifest generator refuses handler files the binary could not use", () => {
  let copy: { dir: string; remove: () => void };
  let original: string;
  before(() => {
    copy = repoCopy();
    original = readFileSync(join(copy.dir, "handlers", "mod.ts"), "utf8");
  });
  after(() => copy.remove());

  /**
   * Writes the files into the copy's handlers/, runs the generator (and its `--check`), removes the files.
   *
   * @returns the generator's exit, after asserting that `--check` fails the same way and that the manifest
   *   was left as it was
   */
  async function generate(files: Record<string, string>): Promise<Exit> {
    const paths = Object.keys(files).map((name) => join(copy.dir, "handlers", name));
    try {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(copy.dir, "handlers", name), text);
      const write = await run(DENO, ["run", "-A", "scripts/gen_manifest.ts"], copy.dir);
      const check = await run(DENO, ["run", "-A", "scripts/gen_manifest.ts", "--check"], copy.dir);
      if (write.code !== 0) {
        assert.equal(readFileSync(join(copy.dir, "handlers", "mod.ts"), "utf8"), original, "manifest kept");
        assert.equal(check.code, write.code, `--check refuses too: ${check.stderr}`);
        assert.equal(check.stderr, write.stderr);
      }
      return write;
    } finally {
      for (const path of paths) rmSync(path, { force: true });
      writeFileSync(join(copy.dir, "handlers", "mod.ts"), original);
    }
  }

  test("two files that define one type, naming both", async () => {
    const exit = await generate({
      "email.ts": handlerSource("email"),
      "email_again.ts": handlerSource("email"),
    });
    assert.equal(exit.code, 1, exit.stdout);
    assert.match(exit.stderr, /handlers\/email\.ts and handlers\/email_again\.ts both define type 'email'/);
  });

  test("a file whose type is not its name, naming the file and both names", async () => {
    const exit = await generate({ "greet.ts": handlerSource("hello") });
    assert.equal(exit.code, 1, exit.stdout);
    assert.match(exit.stderr, /handlers\/greet\.ts defines type 'hello'/);
    assert.match(exit.stderr, /rename it to handlers\/hello\.ts or give it type: "greet"/);
  });

  test("default exports that are not definitions made by defineHandler, naming each file", async () => {
    const exit = await generate({
      "plain.ts": `import * as v from "valibot";
export default { type: "plain", schema: v.object({}), handle() {} };
`,
      "bare_function.ts": "export default function handle() {}\n",
      "named_only.ts": handlerSource("named_only").replace("export default", "export const handler ="),
    });
    assert.equal(exit.code, 1, exit.stdout);
    assert.match(
      exit.stderr,
      /handlers\/plain\.ts: its default export is a plain object with type 'plain', not a handler definition made by defineHandler/,
    );
    assert.match(exit.stderr, /handlers\/bare_function\.ts: its default export is a function/);
    assert.match(exit.stderr, /handlers\/named_only\.ts: it has no default export/);
    assert.match(exit.stderr, /export default defineHandler\(\{ type: "plain"/, "says how to fix it");
  });

  test("a file that fails to load, with its error", async () => {
    const exit = await generate({ "broken.ts": handlerSource("broken", 'throw new Error("not today");') });
    assert.equal(exit.code, 1, exit.stdout);
    assert.match(exit.stderr, /handlers\/broken\.ts: it failed to load: .*not today/);
  });

  test("a .ts file whose name cannot be a handler's and does not start with _", async () => {
    const exit = await generate({ "Send-Email.ts": handlerSource("Send-Email") });
    assert.equal(exit.code, 1, exit.stdout);
    assert.match(exit.stderr, /handlers\/Send-Email\.ts: .*lowercase letters, digits and _/);
  });

  test("schedules: a list not made by defineSchedule, two of one name, one for a type no file defines", async () => {
    const scheduled = (type: string, schedules: string) =>
      handlerSource(type).replace(
        'import { defineHandler } from "../mod.ts";',
        'import { defineHandler, defineSchedule } from "../mod.ts";',
      ) +
      `export const schedules = ${schedules};\n`;
    const exit = await generate({
      "tick.ts": scheduled(
        "tick",
        `[defineSchedule({ name: "s", type: "tick", cron: "@hourly", payload: { name: "a" } })]`,
      ),
      "tock.ts": scheduled(
        "tock",
        `[defineSchedule({ name: "s", type: "tock", cron: "@daily" }), defineSchedule({ name: "t", type: "ghost", cron: "@daily" })]`,
      ),
      "tack.ts": scheduled("tack", `[{ name: "u", type: "tack", cron: "@daily" }]`),
    });
    assert.equal(exit.code, 1, exit.stdout);
    assert.match(exit.stderr, /handlers\/tack\.ts: its schedules export must be an array of defineSchedule/);
    assert.match(exit.stderr, /handlers\/tick\.ts and handlers\/tock\.ts both declare a schedule named 's'/);
    assert.match(
      exit.stderr,
      /handlers\/tock\.ts: schedule 't' is for type 'ghost', which no handler file defines/,
    );
  });

  test("a handler file's schedules are linked beside its handler", async () => {
    const source = handlerSource("tick").replace(
      'import { defineHandler } from "../mod.ts";',
      'import { defineHandler, defineSchedule } from "../mod.ts";',
    ) +
      `export const schedules = [defineSchedule({ name: "hourly_tick", type: "tick", cron: "@hourly", payload: { name: "a" } })];\n`;
    const exit = await generate({ "tick.ts": source });
    assert.equal(exit.code, 0, exit.stderr);
    const text = manifest(["noop.ts", "tick.ts"], ["tick.ts"]);
    assert.match(text, /import tick, \{ schedules as tickSchedules \} from "\.\/tick\.ts";/);
    assert.match(
      text,
      /export const schedules: readonly ScheduleDefinition\[\] = \[\n {2}\.\.\.tickSchedules,\n\];/,
    );
  });

  test("a good new handler file is linked", async () => {
    const exit = await generate({ "greet.ts": handlerSource("greet") });
    assert.equal(exit.code, 0, exit.stderr);
    assert.match(exit.stdout, /Wrote handlers\/mod\.ts with 5 handlers/);
  });
});

describe("a binary whose linked list is broken says so at start", () => {
  const noop = handlers.find((handler) => handler.type === "noop")!;

  test("something that is not a handler definition, by its place in the list", async () => {
    for (const argv of [["handlers"], ["enqueue", "noop"], ["run", "--until-empty"]]) {
      const { code, stdout, stderr } = await cli(argv, {
        handlers: [noop, undefined as unknown as HandlerDefinition],
      });
      assert.equal(code, 1, stdout);
      assertOneLine(stderr, /handler 2 of 2 .* is undefined, not a handler definition made by defineHandler/);
      assert.doesNotMatch(stderr, /undefined is not an object|Cannot read properties/);
    }
  });

  test("two handlers of one type", async () => {
    const { code, stderr } = await cli(["enqueue", "noop"], { handlers: [noop, noop] });
    assert.equal(code, 1);
    assertOneLine(stderr, /handlers 1 and 2 .* both have type 'noop'/);
    assert.doesNotMatch(stderr, /allowOverride/);
  });
});

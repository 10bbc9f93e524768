/**
 * The published package, as a new user gets it: `npm pack` builds the tarball, a registry on loopback serves
 * it (and its dependencies, from npm's cache: no network), new projects install it by name with npm, Bun and
 * Deno, and each runtime enqueues and runs a task through `prismq` and `prismq/testing`; `tsc` type-checks a
 * consumer under the strictest common settings.
 * Also: the versions and exports that package.json, deno.json (JSR) and the code state agree.
 *
 * @module
 */

// Not rerun on libsql: it tests how the package is built, installed and imported, not the engines, which the rest of the suite runs on both.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { VERSION } from "../src/version.ts";
import { type Exit, REPO, start } from "./_binary.ts";
import { makeTempDir } from "./_helpers.ts";
import { type LocalRegistry, startRegistry } from "./fixtures/npm_registry.ts";

const bin = (name: string) => join(REPO, "node_modules", ".bin", name);
const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"));
const PACKAGE = readJson(join(REPO, "package.json"));
const DENO_JSON = readJson(join(REPO, "deno.json"));

async function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Exit> {
  const exit = await start(command, args, {
    cwd,
    env: { ...process.env, NO_COLOR: "1", ...env } as Record<string, string>,
  })
    .done;
  assert.equal(exit.code, 0, `${command} ${args.join(" ")} failed:\n${exit.stdout}\n${exit.stderr}`);
  return exit;
}

/** Enqueues and runs one task on a file database, and one through prismq/testing; prints what ran. */
function runScript(specifier: string): string {
  return `import process from "node:process";
import { Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "${specifier}";
import { createTestQueue } from "${specifier}/testing";

const registry = new TaskHandlerRegistry();
const greeted = [];
registry.registerHandler("greet", (task) => { greeted.push(task.payload.name); });

const db = new QueueDatabase(process.argv[2]);
await db.initializeSchema();
await new Queue(db, { registry }).enqueue("greet", { name: "Ada" });
const summary = await new WorkerEngine({ db, workerId: "consumer", handlerRegistry: registry })
  .runLoop({ untilEmpty: true });
await db.close();

const testQueue = await createTestQueue({ registry });
await testQueue.queue.enqueue("greet", { name: "Bob" }, { delayMs: 60_000 });
testQueue.clock.advance(60_000);
const drained = await testQueue.drain();
await testQueue.close();
console.log(JSON.stringify({ greeted, completed: summary.completed, drained: drained.map((t) => t.outcome) }));
`;
}

/** Uses the types a TypeScript user touches first, so a broken declaration fails to compile. */
const CONSUMER_TS = `import * as v from "valibot";
import { defineHandler, Queue, QueueDatabase, type Task, TaskHandlerRegistry, WorkerEngine } from "prismq";
import { assertEnqueued, createTestQueue } from "prismq/testing";

const greet = defineHandler({
  type: "greet",
  schema: v.object({ name: v.string() }),
  handle(task, ctx) {
    const name: string = task.payload.name;
    ctx.log("info", name);
  },
});
const registry = new TaskHandlerRegistry();
registry.registerHandler(greet);

const db = new QueueDatabase(":memory:");
await db.initializeSchema();
const queue = new Queue(db, { registry });
const maybeDelay: number | undefined = undefined;
const task: Task = await queue.enqueue("greet", { name: "Ada" }, { priority: 1, delayMs: maybeDelay });
await db.transaction(async (tx) => {
  await queue.enqueue("greet", { name: "Bob" }, { tx });
});
const summary = await new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, concurrency: 2 })
  .runLoop({ untilEmpty: true });
const completed: number = summary.completed;
await db.close();

const testQueue = await createTestQueue({ registry });
await testQueue.queue.enqueue("greet", { name: "Cy" });
await assertEnqueued(testQueue, { type: "greet", payload: { name: "Cy" } });
await testQueue.close();
export { completed, task };
`;

function tsconfig(skipLibCheck: boolean): string {
  return JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck,
      noEmit: true,
      types: [],
    },
    files: ["consumer.ts"],
  });
}

describe("the npm package", () => {
  let temp: { dir: string; remove: () => void };
  let tarball: string;
  let registry: LocalRegistry;
  /** An application's folder: a package.json, and what the test writes and installs there. */
  const project = (name: string, files: Record<string, string> = {}) => {
    const dir = join(temp.dir, name);
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
    for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
    return dir;
  };
  /** Every package manager and runtime installs from the loopback registry into the test's folder. */
  const installEnv = () => ({
    npm_config_registry: registry.url,
    npm_config_cache: join(temp.dir, "npm-cache"),
    npm_config_update_notifier: "false",
    BUN_CONFIG_REGISTRY: registry.url,
    BUN_INSTALL_CACHE_DIR: join(temp.dir, "bun-cache"),
    NPM_CONFIG_REGISTRY: registry.url,
    DENO_DIR: join(temp.dir, "deno-dir"),
    DENO_NO_UPDATE_CHECK: "1",
    DO_NOT_TRACK: "1",
  });
  const expected = { greeted: ["Ada", "Bob"], completed: 1, drained: ["completed"] };
  let nodeProject: string;

  before(async () => {
    temp = makeTempDir("prismq-package-");
    const packed = await run("npm", ["pack", "--json", "--pack-destination", temp.dir], REPO);
    const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("[")));
    tarball = join(temp.dir, filename);
    registry = await startRegistry(join(REPO, "package-lock.json"), [tarball]);
    nodeProject = project("node-app", { "run.mjs": runScript("prismq"), "consumer.ts": CONSUMER_TS });
    await run("npm", ["install", "prismq", "--no-audit", "--no-fund"], nodeProject, installEnv());
  });
  after(async () => {
    await registry?.close();
    temp?.remove();
  });

  test("ships compiled JavaScript, declarations, README and LICENSE; no sources, tests or scripts", async () => {
    const listing = await run("tar", ["-tzf", tarball], temp.dir);
    const files = listing.stdout.trim().split("\n").map((f) => f.replace(/^package\//, ""));
    for (
      const file of ["package.json", "README.md", "LICENSE", "dist/package/mod.js", "dist/package/mod.d.ts"]
    ) {
      assert.ok(files.includes(file), `${file} is in the tarball`);
    }
    assert.ok(files.includes("dist/package/testing.js") && files.includes("dist/package/testing.d.ts"));
    const unwanted = files.filter((f) =>
      /^(tests|scripts|bench|handlers|src)\//.test(f) || (f.endsWith(".ts") && !f.endsWith(".d.ts"))
    );
    assert.deepEqual(unwanted, []);
  });

  test("npm install prismq: plain Node imports it with no build step and runs a task", async () => {
    const manifest = readJson(join(nodeProject, "package.json"));
    assert.equal(manifest.dependencies.prismq, `^${VERSION}`);
    const out = await run("node", ["run.mjs", join(temp.dir, "node.db")], nodeProject);
    assert.deepEqual(JSON.parse(out.stdout), expected);
  });

  test("bun add prismq: Bun installs it and runs a task", async () => {
    const dir = project("bun-app", { "run.mjs": runScript("prismq") });
    await run(bin("bun"), ["add", "prismq"], dir, installEnv());
    const out = await run(bin("bun"), ["run.mjs", join(temp.dir, "bun.db")], dir);
    assert.deepEqual(JSON.parse(out.stdout), expected);
  });

  test("Deno runs a task through 'npm:prismq', and through 'prismq' in an npm project", async () => {
    // Deno's own npm resolution: no package.json, no node_modules.
    const bare = join(temp.dir, "deno-app");
    mkdirSync(bare);
    writeFileSync(join(bare, "run.mjs"), runScript("npm:prismq"));
    const viaNpm = await run(
      bin("deno"),
      ["run", "-A", "run.mjs", join(temp.dir, "deno.db")],
      bare,
      installEnv(),
    );
    assert.deepEqual(JSON.parse(viaNpm.stdout), expected);
    // The project npm installed, read by Deno from its node_modules.
    writeFileSync(join(nodeProject, "deno.json"), JSON.stringify({ nodeModulesDir: "manual" }));
    const viaNodeModules = await run(
      bin("deno"),
      ["run", "-A", "run.mjs", join(temp.dir, "deno-node-modules.db")],
      nodeProject,
      installEnv(),
    );
    assert.deepEqual(JSON.parse(viaNodeModules.stdout), expected);
  });

  test("its types compile in a strict consumer (strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess)", async () => {
    writeFileSync(join(nodeProject, "tsconfig.json"), tsconfig(true));
    await run(bin("tsc"), ["-p", "tsconfig.json"], nodeProject);
    // Checking every declaration file too: none of the errors may be in PrismQ's (its dependencies' own
    // declarations are theirs to fix).
    writeFileSync(join(nodeProject, "tsconfig.json"), tsconfig(false));
    const full = await start(bin("tsc"), ["-p", "tsconfig.json"], {
      cwd: nodeProject,
      env: { ...process.env } as Record<string, string>,
    }).done;
    const ours = full.stdout.split("\n").filter((line) =>
      /^(node_modules\/prismq\/|consumer\.ts)/.test(line)
    );
    assert.deepEqual(ours, []);
  });
});

describe("package metadata", () => {
  test("package.json, deno.json (JSR) and the code state one version", () => {
    assert.equal(PACKAGE.version, VERSION);
    assert.equal(DENO_JSON.version, VERSION);
  });

  test("package.json and deno.json export the same entry points", () => {
    assert.deepEqual(Object.keys(PACKAGE.exports).sort(), Object.keys(DENO_JSON.exports).sort());
    for (const [entry, target] of Object.entries<string>(DENO_JSON.exports)) {
      const built = target.replace(/^\.\//, "./dist/package/").replace(/\.ts$/, ".js");
      assert.equal(PACKAGE.exports[entry].default, built, entry);
    }
  });

  test("deno.json maps every runtime dependency to the range package.json asks for", () => {
    for (const [name, range] of Object.entries<string>(PACKAGE.dependencies)) {
      const mapped = Object.entries<string>(DENO_JSON.imports).filter(([specifier]) =>
        specifier === name || specifier.startsWith(`${name}/`)
      );
      assert.ok(mapped.length > 0, `deno.json imports ${name}`);
      for (const [specifier, target] of mapped) {
        assert.ok(target.startsWith(`npm:${name}@${range}`), `${specifier} → ${target} uses ${range}`);
      }
    }
  });
});

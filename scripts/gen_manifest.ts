/**
 * Writes `handlers/mod.ts`: a static import of every handler file in `handlers/` and the lists the
 * `prismq` binary links: the handlers, and the schedules handler files declare beside them
 * (`export const schedules = [defineSchedule({...})]`). With `--check`, writes nothing and exits 1 when the file is stale (CI runs that).
 *
 * A handler file is `handlers/<type>.ts` whose default export is made by `defineHandler` with that type;
 * files whose names start with `_` are shared helpers, not handlers, and `*_test.ts` files are tests. To
 * check that, the generator imports each handler file: this is a build step, so the binary itself still
 * loads nothing from a path at run time. It refuses, naming the files and writing nothing: two files of one
 * type, a file whose type is not its name, a default export not made by `defineHandler`, a file that fails
 * to load, and a `.ts` file whose name cannot be a type (which would otherwise be silently left out); and
 * schedules: a `schedules` export that is not an array of `defineSchedule(...)` values, two schedules of one
 * name, and a schedule for a type no handler file defines.
 *
 * Usage: deno run -A scripts/gen_manifest.ts [--check]
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { describeNonDefinition, isMadeByDefineHandler } from "../src/handler.ts";
import { isScheduleDefinition, type ScheduleDefinition } from "../src/schedule.ts";

const folder = new URL("../handlers/", import.meta.url).pathname;
const manifestPath = join(folder, "mod.ts");

/** A handler file's name: its type, then `.ts`. Types so named are also valid identifiers once camel-cased. */
const HANDLER_FILE = /^[a-z][a-z0-9_]*\.ts$/;

function isTest(name: string): boolean {
  return name.endsWith("_test.ts") || name.endsWith(".test.ts");
}

/** The handler files, sorted, as the manifest lists them. */
export function handlerFiles(names: string[]): string[] {
  return names.filter((name) => HANDLER_FILE.test(name) && name !== "mod.ts" && !isTest(name)).sort();
}

/** `.ts` files that are neither handler files, helpers (`_name.ts`), tests nor the manifest. */
export function misnamedFiles(names: string[]): string[] {
  return names.filter((name) =>
    name.endsWith(".ts") && !name.endsWith(".d.ts") && !name.startsWith("_") && !isTest(name) &&
    !HANDLER_FILE.test(name)
  ).sort();
}

/** "a", "a and b", "a, b and c". */
function listed(items: string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/**
 * Imports each handler file and says what is wrong with the set, one sentence per problem, each naming its
 * files and how to fix them.
 *
 * @param dir the handlers folder
 * @param names the names of the files in it
 * @returns the problems; none when the manifest can be written
 */
export async function handlerProblems(dir: string, names: string[]): Promise<string[]> {
  return (await inspectHandlers(dir, names)).problems;
}

/**
 * {@link handlerProblems}, and the handler files that declare schedules (a `schedules` export), sorted.
 *
 * @param dir the handlers folder
 * @param names the names of the files in it
 */
export async function inspectHandlers(
  dir: string,
  names: string[],
): Promise<{ problems: string[]; scheduleFiles: string[] }> {
  const scheduleFiles: string[] = [];
  const declared: [string, ScheduleDefinition][] = [];
  const problems = misnamedFiles(names).map((name) =>
    `handlers/${name}: a handler file is named after its type, in lowercase letters, digits and _ ` +
    `(starting with a letter); rename it, or start its name with _ if it is a helper and not a handler.`
  );
  const filesOfType = new Map<string, string[]>();
  for (const file of handlerFiles(names)) {
    const label = `handlers/${file}`;
    const fix = `Write export default defineHandler({ type: "${file.slice(0, -3)}", schema, handle }).`;
    let module: Record<string, unknown>;
    try {
      module = await import(pathToFileURL(join(dir, file)).href);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      problems.push(`${label}: it failed to load: ${message.trim().replace(/\n/g, "\n    ")}`);
      continue;
    }
    if (!("default" in module)) {
      problems.push(`${label}: it has no default export. ${fix}`);
      continue;
    }
    if (!isMadeByDefineHandler(module.default)) {
      problems.push(
        `${label}: its default export is ${describeNonDefinition(module.default)}, not a handler ` +
          `definition made by defineHandler. ${fix}`,
      );
      continue;
    }
    const { type } = module.default;
    filesOfType.set(type, [...filesOfType.get(type) ?? [], file]);
    if (!("schedules" in module)) continue;
    const list = module.schedules;
    const bad = Array.isArray(list) ? list.findIndex((item) => !isScheduleDefinition(item)) : -1;
    if (!Array.isArray(list) || bad !== -1) {
      problems.push(
        `${label}: its schedules export must be an array of defineSchedule({ name, type, cron }) values` +
          (Array.isArray(list) ? `; item ${bad + 1} is ${describeNonDefinition(list[bad])}.` : "."),
      );
      continue;
    }
    scheduleFiles.push(file);
    for (const schedule of list as ScheduleDefinition[]) declared.push([file, schedule]);
  }
  const seen = new Map<string, string>();
  for (const [file, schedule] of declared) {
    const first = seen.get(schedule.name);
    if (first !== undefined) {
      problems.push(
        `handlers/${first} and handlers/${file} both declare a schedule named '${schedule.name}': give each ` +
          `schedule a name of its own.`,
      );
    }
    seen.set(schedule.name, file);
    if (!filesOfType.has(schedule.type)) {
      problems.push(
        `handlers/${file}: schedule '${schedule.name}' is for type '${schedule.type}', which no handler file ` +
          `defines: add handlers/${schedule.type}.ts, or correct the type.`,
      );
    }
  }
  for (const [type, files] of filesOfType) {
    const own = `${type}.ts`;
    if (files.length > 1) {
      const others = files.filter((file) => file !== own).map((file) => `handlers/${file}`);
      problems.push(
        `${listed(files.map((file) => `handlers/${file}`))} ${files.length === 2 ? "both" : "all"} define ` +
          `type '${type}', which only one file, handlers/${own}, may define: give ${listed(others)} the ` +
          `type of ${others.length === 1 ? "its" : "their"} own name, or remove ${
            others.length === 1 ? "it" : "them"
          }.`,
      );
    } else if (files[0] !== own) {
      const name = files[0].slice(0, -3);
      const rename = HANDLER_FILE.test(own) ? `rename it to handlers/${own} or ` : "";
      problems.push(
        `handlers/${files[0]} defines type '${type}', but a handler file defines the type of its name: ` +
          `${rename}give it type: "${name}".`,
      );
    }
  }
  return { problems, scheduleFiles: scheduleFiles.sort() };
}

/**
 * The manifest's text for these handler files.
 *
 * @param scheduleFiles those of `files` that export schedules
 */
export function manifest(files: string[], scheduleFiles: readonly string[] = []): string {
  const binding = (file: string) =>
    file.slice(0, -3).replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const imports = files.map((file) =>
    scheduleFiles.includes(file)
      ? `import ${binding(file)}, { schedules as ${binding(file)}Schedules } from "./${file}";`
      : `import ${binding(file)} from "./${file}";`
  ).join("\n");
  const list = files.map((file) => `  ${binding(file)},`).join("\n");
  const scheduleList = scheduleFiles.map((file) => `  ...${binding(file)}Schedules,\n`).join("");
  return `// Generated by scripts/gen_manifest.ts from the files in this folder. Do not edit: run
// \`deno task manifest\` after adding or removing a handler file.
import type { HandlerDefinition, ScheduleDefinition } from "../mod.ts";
${imports}

/** The handlers linked into the \`prismq\` binary, in file-name order. */
export const handlers: readonly HandlerDefinition[] = [
${list}
];

/** The schedules the handler files declare beside their handlers, in file-name order. */
export const schedules: readonly ScheduleDefinition[] = [${scheduleList ? `\n${scheduleList}` : ""}];
`;
}

if (import.meta.main) {
  const names = readdirSync(folder);
  const { problems, scheduleFiles } = await inspectHandlers(folder, names);
  if (problems.length > 0) {
    console.error(
      `Cannot generate handlers/mod.ts (nothing was written):\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    process.exit(1);
  }
  const files = handlerFiles(names);
  const expected = manifest(files, scheduleFiles);
  let current = "";
  try {
    current = readFileSync(manifestPath, "utf8");
  } catch {
    // missing: stale by definition
  }
  if (process.argv.includes("--check")) {
    if (current !== expected) {
      console.error("handlers/mod.ts is stale: run 'deno task manifest' and commit the result.");
      process.exit(1);
    }
    console.log("handlers/mod.ts is up to date.");
  } else if (current !== expected) {
    writeFileSync(manifestPath, expected);
    console.log(`Wrote handlers/mod.ts with ${files.length} handlers.`);
  } else {
    console.log("handlers/mod.ts is already up to date.");
  }
  // A handler file's top-level code (a timer, say) must not keep the build waiting.
  process.exit(0);
}

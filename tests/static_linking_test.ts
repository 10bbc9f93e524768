/**
 * Handlers are linked at build time and nothing is ever loaded at run time: no computed import, no require,
 * no eval. The manifest lists every handler file and the CLI registers exactly its handlers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { handlers } from "../handlers/mod.ts";
import { handlerFiles, manifest } from "../scripts/gen_manifest.ts";
import { linkedRegistry } from "../src/cli/context.ts";
import { VERSION } from "../src/version.ts";
import { REPO } from "./_helpers.ts";

function sourceFiles(folder: string): string[] {
  return readdirSync(join(REPO, folder)).flatMap((name) => {
    const path = join(folder, name);
    return statSync(join(REPO, path)).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Code with comments and string contents blanked, so that prose and messages do not count. */
function code(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:])\/\/.*$/gm, "$1")
    .replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/g, '""');
}

const FORBIDDEN: [RegExp, string][] = [
  // import("") is a literal specifier (string contents are blanked): allowed only for the dependencies below.
  [/\bimport\s*\((?!""\s*\))/, "dynamic import()"],
  [/\brequire\s*\(/, "require()"],
  [/\beval\s*\(/, "eval()"],
  [/\bnew\s+Function\b/, "new Function"],
  [/\bFunction\s*\(/, "Function()"],
  [/\bcreateRequire\b/, "createRequire"],
];

/**
 * The one kind of import() allowed: a string literal naming a package that package.json depends on, which
 * bundlers link in at build time like a static import; only its evaluation waits until it is needed. An
 * optional peer dependency counts (`@opentelemetry/api`): linked in the same way where it is installed, and
 * its import caught where it is not (`src/worker/tracing.ts`).
 */
const PACKAGE = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
};
const DEPENDENCIES = [
  ...Object.keys(PACKAGE.dependencies),
  ...Object.entries(PACKAGE.peerDependenciesMeta ?? {}).filter(([, meta]) => meta.optional).map(([name]) =>
    name
  ),
];
const LITERAL_IMPORT = /\bimport\s*\(\s*(["'])([^"'\n]*)\1\s*\)/g;

/**
 * And one more: in `src/store/`, a literal relative path to a file that exists, which bundlers link in the
 * same way: a store loads lazily, so that programs not using it never evaluate its driver
 * (`src/store/postgres/lazy_store.ts`). Handlers never: they are linked by the manifest.
 */
function linkedStoreFile(specifier: string, file: string | undefined): boolean {
  if (!file?.startsWith("src/store/") || !/^\.\.?\//.test(specifier)) return false;
  return existsSync(join(REPO, dirname(file), specifier));
}

function undeclaredLiteralImports(text: string, file?: string): string[] {
  return [...text.matchAll(LITERAL_IMPORT)].map((match) => match[2]).filter((specifier) =>
    !DEPENDENCIES.some((name) => specifier === name || specifier.startsWith(`${name}/`)) &&
    !linkedStoreFile(specifier, file)
  );
}

test("src/ and handlers/ contain no run-time code loading", () => {
  const files = [...sourceFiles("src"), ...sourceFiles("handlers"), "mod.ts"];
  assert.ok(files.length > 20, "the scan sees the sources");
  const found = files.flatMap((file) => {
    const source = readFileSync(join(REPO, file), "utf8");
    const text = code(source);
    return [
      ...FORBIDDEN.filter(([pattern]) => pattern.test(text)).map(([, what]) => `${file}: ${what}`),
      ...undeclaredLiteralImports(source, file).map((specifier) => `${file}: import("${specifier}")`),
    ];
  });
  assert.deepEqual(found, []);
});

test("the scan itself catches each forbidden form", () => {
  for (
    const sample of [
      "await import(name)",
      "await import(`./${name}.ts`)",
      'await import("./" + name)',
      'require("x")',
      "eval(code)",
      'new Function("return 1")',
    ]
  ) {
    assert.ok(FORBIDDEN.some(([pattern]) => pattern.test(code(sample))), sample);
  }
  assert.ok(!FORBIDDEN.some(([pattern]) => pattern.test(code('// require("x") in a comment'))));
  assert.ok(!FORBIDDEN.some(([pattern]) => pattern.test(code('await import("@libsql/client")'))));
  assert.deepEqual(undeclaredLiteralImports('import("@libsql/client"); import("valibot/x")'), []);
  assert.deepEqual(undeclaredLiteralImports('import("./handler.ts"); import("left-pad")'), [
    "./handler.ts",
    "left-pad",
  ]);
  assert.deepEqual(undeclaredLiteralImports('import("./store.ts")', "src/store/postgres/lazy_store.ts"), []);
  assert.deepEqual(undeclaredLiteralImports('import("./gone.ts")', "src/store/postgres/lazy_store.ts"), [
    "./gone.ts",
  ]);
  assert.deepEqual(undeclaredLiteralImports('import("./store.ts")', "handlers/mod.ts"), ["./store.ts"]);
});

test("handlers/mod.ts is the generated manifest of every handler file", () => {
  const files = handlerFiles(readdirSync(join(REPO, "handlers")));
  assert.equal(readFileSync(join(REPO, "handlers/mod.ts"), "utf8"), manifest(files));
  assert.deepEqual(handlers.map((h) => `${h.type}.ts`), files);
});

test("the manifest skips helpers, tests and itself", () => {
  assert.deepEqual(
    handlerFiles(["mod.ts", "_shared.ts", "noop.ts", "noop_test.ts", "send_email.ts", "x.md"]),
    [
      "noop.ts",
      "send_email.ts",
    ],
  );
});

test("the CLI registers exactly the manifest's handlers", () => {
  const registry = linkedRegistry(handlers);
  assert.deepEqual([...registry.getRegisteredTypes()].sort(), handlers.map((h) => h.type).sort());
  for (const handler of handlers) {
    assert.equal(registry.getHandlerInfo(handler.type)?.handler, handler.handle);
  }
});

test("the version matches package.json", () => {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  assert.equal(VERSION, pkg.version);
});

/**
 * `deno task build`: compiles `prismq` into one self-contained executable with `bun build --compile`.
 * Runs under Bun. The executable embeds libSQL's native addon, so it runs from an empty folder.
 *
 * Bun strips types without checking them, so the binary's sources (the CLI entry, `handlers/` and `src/`)
 * are type-checked with Deno first: a type error stops the build with the error shown, before anything is
 * written.
 *
 * Usage: bun scripts/build.ts [--outfile dist/prismq] [--target bun-linux-x64]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    outfile: { type: "string", default: "dist/prismq" },
    target: { type: "string" },
  },
});

/** libSQL's prebuilt addon package for each Bun compile target. */
const ADDONS: Record<string, string> = {
  "bun-linux-x64": "@libsql/linux-x64-gnu",
  "bun-linux-arm64": "@libsql/linux-arm64-gnu",
  "bun-linux-x64-musl": "@libsql/linux-x64-musl",
  "bun-linux-arm64-musl": "@libsql/linux-arm64-musl",
  "bun-darwin-x64": "@libsql/darwin-x64",
  "bun-darwin-arm64": "@libsql/darwin-arm64",
  "bun-windows-x64": "@libsql/win32-x64-msvc",
};

const target = values.target ??
  `bun-${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
const addon = ADDONS[target];
if (!addon) {
  console.error(`No libSQL addon is known for target '${target}'. Known: ${Object.keys(ADDONS).join(", ")}.`);
  process.exit(2);
}

const root = new URL("..", import.meta.url).pathname;
const localDeno = join(root, "node_modules", ".bin", "deno");
const check = spawnSync(
  existsSync(localDeno) ? localDeno : "deno",
  ["check", "--quiet", "scripts/prismq.ts", "scripts/prismq_process.ts", "handlers/", "src/"],
  { cwd: root, stdio: "inherit" },
);
if (check.error) {
  console.error(`Cannot run the type check with Deno (${check.error.message}); run 'npm ci' to install it.`);
  process.exit(1);
}
if (check.status !== 0) {
  console.error("The type check failed (see above), so nothing was built. Fix the errors and build again.");
  process.exit(1);
}

// libSQL picks its addon with `require(\`@libsql/${target}\`)`, a computed specifier that a bundler cannot
// follow. Rewriting it to the literal package for the build target makes the addon part of the bundle.
const COMPUTED_REQUIRE = "return require(`@libsql/${target}`);";
const staticNativeAddon = {
  name: "libsql-static-native-addon",
  setup(build: { onLoad: (options: { filter: RegExp }, load: (args: { path: string }) => unknown) => void }) {
    build.onLoad({ filter: /node_modules[\\/]libsql[\\/]index\.js$/ }, async ({ path }) => {
      const source = await Bun.file(path).text();
      if (!source.includes(COMPUTED_REQUIRE)) {
        throw new Error(
          `libSQL's loader changed (${path}); update scripts/build.ts to make its require static.`,
        );
      }
      return {
        contents: source.replace(COMPUTED_REQUIRE, `return require(${JSON.stringify(addon)});`),
        loader: "js",
      };
    });
  },
};

const result = await Bun.build({
  entrypoints: [new URL("./prismq.ts", import.meta.url).pathname],
  compile: { target: target as "bun-linux-x64", outfile: values.outfile },
  minify: true,
  // Compiled ahead to JavaScriptCore bytecode: the binary skips parsing its bundle, which halves its start
  // (about 85 ms to 45 ms for `prismq --version` on a 2-core machine).
  bytecode: true,
  format: "esm",
  sourcemap: "none",
  plugins: [staticNativeAddon],
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`Built ${values.outfile} for ${target}.`);

declare const Bun: {
  file(path: string): { text(): Promise<string> };
  build(options: Record<string, unknown>): Promise<{ success: boolean; logs: unknown[] }>;
};

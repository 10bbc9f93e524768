/**
 * `deno task compile`: builds `dist/prismq-deno` with `deno compile`, for users whose Deno can fetch its
 * `denort` runtime (or who point `DENORT_BIN` at a local one). libSQL picks its native addon with a
 * computed `require`, which `deno compile` cannot follow, so the addon package for this platform is
 * included explicitly.
 *
 * Usage: deno run -A scripts/compile.ts [--output dist/prismq-deno]
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { output: { type: "string", default: "dist/prismq-deno" } } });

const ADDONS: Record<string, string> = {
  "linux-x64": "@libsql/linux-x64-gnu",
  "linux-arm64": "@libsql/linux-arm64-gnu",
  "darwin-x64": "@libsql/darwin-x64",
  "darwin-arm64": "@libsql/darwin-arm64",
  "win32-x64": "@libsql/win32-x64-msvc",
};
const addon = ADDONS[`${process.platform}-${process.arch}`];
if (!addon) {
  console.error(`No libSQL addon is known for ${process.platform}-${process.arch}.`);
  process.exit(2);
}
const result = spawnSync(process.execPath, [
  "compile",
  "-A",
  "--include",
  `node_modules/${addon}`,
  "--output",
  values.output,
  "scripts/prismq.ts",
], { stdio: "inherit" });
process.exit(result.status ?? 1);

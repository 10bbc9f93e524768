/**
 * The compiled `prismq` the benchmark runs: dist/prismq when it is newer than every source it is built
 * from, otherwise a fresh build (`npx bun scripts/build.ts`), into dist/ or, for `--tiny`, a temporary folder.
 *
 * @module
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { exitWithin, start } from "./processes.ts";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** A script of scripts/bench/ run by the Deno that runs this bench, or by `npx deno` under another runtime. */
export function denoCommand(script: string): [string, string[]] {
  const args = ["run", "-A", join(REPO, "scripts", "bench", script)];
  return "Deno" in globalThis ? [process.execPath, args] : ["npx", ["deno", ...args]];
}

/** What the binary is built from: a change to any of these makes dist/prismq stale. */
const SOURCES = ["src", "handlers", "scripts/prismq.ts", "scripts/prismq_process.ts"];

const BUILD_TIMEOUT_MS = 300_000;

/** The newest modification time among `path` and, for a folder, everything under it. */
function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/**
 * dist/prismq when it is up to date; otherwise builds one at dist/prismq, or in `scratchDir` when
 * `keepDistUntouched` (CI runs must not leave a binary behind).
 */
export async function prismqBinary(options: { scratchDir: string; keepDistUntouched: boolean }) {
  const dist = join(REPO, "dist", "prismq");
  if (existsSync(dist)) {
    const sources = Math.max(...SOURCES.map((source) => newestMtime(join(REPO, source))));
    if (statSync(dist).mtimeMs > sources) return dist;
  }
  const outfile = options.keepDistUntouched ? join(options.scratchDir, "prismq") : dist;
  mkdirSync(dirname(outfile), { recursive: true });
  process.stderr.write(`building ${options.keepDistUntouched ? outfile : "dist/prismq"}…\n`);
  const build = start("npx", ["bun", "scripts/build.ts", "--outfile", outfile], { cwd: REPO });
  const exit = await exitWithin(build, BUILD_TIMEOUT_MS, "the build");
  if (exit.code !== 0) throw new Error(`building ${outfile} failed: ${build.stderr().trim()}`);
  return outfile;
}

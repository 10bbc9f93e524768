/**
 * Running processes in tests: spawning with captured output, and the compiled `prismq` binary, built once
 * per test file into a temporary folder.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { makeTempDir, REPO } from "./_helpers.ts";

// Also here for the test files that import them from this one.
export { assertOneLine, REPO } from "./_helpers.ts";

const BUN = join(REPO, "node_modules", ".bin", "bun");

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Proc {
  child: ChildProcess;
  /** What the process has written so far. */
  readonly stdout: string;
  readonly stderr: string;
  done: Promise<Exit>;
}

export interface SpawnOptions {
  cwd: string;
  stdin?: string;
  /** Leave standard input open after `stdin`, for a process that must still be reading when signalled. */
  stdinOpen?: boolean;
  env?: Record<string, string>;
  /** Start reading stdout only once the process exited or this long passed: a slow reader. */
  slowReaderMs?: number;
}

/** A small environment: the binary must need nothing from the developer's. */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };
}

export function start(command: string, args: string[], options: SpawnOptions): Proc {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? baseEnv(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  if (options.slowReaderMs !== undefined) {
    child.stdout!.pause();
    const resume = setTimeout(() => child.stdout!.resume(), options.slowReaderMs);
    child.on("exit", () => {
      clearTimeout(resume);
      child.stdout!.resume();
    });
  }
  child.stdin!.on("error", () => {}); // a process that exits without reading its input
  if (options.stdinOpen) child.stdin!.write(options.stdin ?? "");
  else child.stdin!.end(options.stdin ?? "");
  const done = new Promise<Exit>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
  };
}

/**
 * Builds `prismq` with `bun build --compile` into a new temporary folder, alone there.
 *
 * @returns the binary's path, and the function that removes its folder
 */
export async function buildBinary(): Promise<{ bin: string; dir: string; remove: () => void }> {
  const { dir, remove } = makeTempDir("prismq-bin-");
  const bin = join(dir, "prismq");
  const build = await start(BUN, ["scripts/build.ts", "--outfile", bin], {
    cwd: REPO,
    env: { ...process.env } as Record<string, string>,
  }).done;
  assert.equal(build.code, 0, `the build failed: ${build.stdout}${build.stderr}`);
  assert.ok(existsSync(bin), "the build wrote the binary");
  return { bin, dir, remove };
}

/**
 * The compiled binary (Bun, JavaScriptCore) runs `prismq run` with the JIT's top tier, FTL, off. A worker's
 * hot path is many small asynchronous steps per task, which the tier below (DFG) already compiles well:
 * FTL's compilations cost more CPU than they save, and on a 2-core machine they take it from the worker
 * and the database. Measured on one: a worker draining 12,500 tasks used 0.45 s of CPU instead of 0.75,
 * 400,000 tasks 6.5 s instead of 7.7; four workers drained PostgreSQL about a fifth faster. JavaScriptCore
 * reads the setting only at start-up, from the environment, so the worker starts itself again with it
 * (`execve`: the same process id, arguments, streams and signals). A user who sets the variable, to
 * anything, keeps their choice: `BUN_JSC_useFTLJIT=1` gives FTL back to handlers with long CPU-bound loops.
 *
 * @module
 */

/** JavaScriptCore's switch for FTL, read from the environment when Bun starts. */
export const FTL_VARIABLE = "BUN_JSC_useFTLJIT";

/** The parts of `node:process` this needs. */
export interface RestartableProcess {
  argv: string[];
  env: Record<string, string | undefined>;
  execPath: string;
  platform: string;
  versions: { readonly [name: string]: string | undefined };
  execve?: (file: string, args: string[], env: Record<string, string | undefined>) => void;
}

/**
 * Starts `prismq run` again with FTL off, when this is a compiled Bun binary, the variable is unset and the
 * platform can `execve`. Returns (having done nothing) in every other case; does not return otherwise.
 */
export function restartWithoutFtl(process: RestartableProcess): void {
  if (!shouldRestart(process)) return;
  try {
    process.execve!(process.execPath, [process.execPath, ...process.argv.slice(2)], {
      ...process.env,
      [FTL_VARIABLE]: "0",
    });
  } catch {
    // The binary could not be started again (moved or deleted since it started): run as it is.
  }
}

/** Whether {@link restartWithoutFtl} starts the process again. */
export function shouldRestart(process: RestartableProcess): boolean {
  // A compiled binary's script lives in Bun's embedded file system.
  const compiled = process.versions.bun !== undefined && process.argv[1]?.startsWith("/$bunfs/") === true;
  return compiled && process.argv[2] === "run" && process.env[FTL_VARIABLE] === undefined &&
    process.platform !== "win32" && typeof process.execve === "function";
}

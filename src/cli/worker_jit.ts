/**
 * The compiled binary (Bun, JavaScriptCore) runs `prismq run` with the JIT's top tier, FTL, off. A worker's
 * hot path is many small asynchronous steps per task, which the tier below (DFG) already compiles well:
 * FTL's compilations cost more CPU than they save, and on a 2-core machine they take it from the worker
 * and the database. Measured on one: a worker draining 12,500 tasks used 0.45 s of CPU instead of 0.75,
 * 400,000 tasks 6.5 s instead of 7.7; four workers drained PostgreSQL about a fifth faster or more.
 * JavaScriptCore reads the setting only at start-up, from the environment, so the worker starts itself
 * again with it (`execve`: the same process id, arguments, standard streams and signals).
 *
 * It does so on Linux, where this was measured. Bun's `execve` closes every descriptor above 2: a worker
 * whose handlers' programs must inherit one (`3>log`) is run with the variable set. A user who sets it, to
 * anything, keeps their choice (`BUN_JSC_useFTLJIT=1` gives FTL back to handlers with long CPU-bound
 * loops); the variable the restart set is taken out of the environment again once read, so that programs
 * the handlers start do not inherit it. Descriptors are not checked: shells and test harnesses leave some
 * open in every process they start, which would keep FTL on nearly everywhere.
 *
 * @module
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** JavaScriptCore's switch for FTL, read from the environment when Bun starts. */
export const FTL_VARIABLE = "BUN_JSC_useFTLJIT";
/** Set beside it by the restart, so that the restarted process knows the variable is its own. */
export const RESTARTED_VARIABLE = "PRISMQ_RESTARTED_WITHOUT_FTL";

/** The parts of `node:process` this needs. */
export interface RestartableProcess {
  argv: string[];
  /** The program as it was started (a symbolic link's name, say), where `execPath` is the file. */
  argv0: string;
  env: Record<string, string | undefined>;
  execPath: string;
  platform: string;
  versions: { readonly [name: string]: string | undefined };
  execve?: (file: string, args: string[], env: Record<string, string | undefined>) => void;
}

/**
 * Starts `prismq run` again with FTL off, when this is a compiled Bun binary on Linux and the variable is
 * unset. Returns, having done nothing, in every other case (in the
 * restarted process, after taking the restart's variables out of its environment); does not return
 * otherwise.
 */
export function restartWithoutFtl(process: RestartableProcess): void {
  if (process.env[RESTARTED_VARIABLE] === "1") {
    delete process.env[RESTARTED_VARIABLE];
    delete process.env[FTL_VARIABLE];
    return;
  }
  if (!mayRestart(process)) return;
  try {
    process.execve!(programFile(process), [process.argv0, ...process.argv.slice(2)], {
      ...process.env,
      [FTL_VARIABLE]: "0",
      [RESTARTED_VARIABLE]: "1",
    });
  } catch {
    // The binary could not be started again (moved or deleted since it started): run as it is.
  }
}

/** Whether this is a compiled binary's `run` that {@link restartWithoutFtl} may start again. */
function mayRestart(process: RestartableProcess): boolean {
  // A compiled binary's script lives in Bun's embedded file system.
  const compiled = process.versions.bun !== undefined && process.argv[1]?.startsWith("/$bunfs/") === true;
  return compiled && process.argv[2] === "run" && process.env[FTL_VARIABLE] === undefined &&
    process.platform === "linux" && typeof process.execve === "function";
}

/**
 * The file to start again: the one the program was started as (a symbolic link keeps its name, which is
 * what `ps` and `pgrep` show), found on PATH when it was started by name; else the binary itself.
 */
function programFile({ argv0, env, execPath }: RestartableProcess): string {
  const candidates = argv0.includes("/")
    ? [argv0]
    : (env.PATH ?? "").split(delimiter).filter((folder) => folder !== "").map((folder) =>
      join(folder, argv0)
    );
  // A name given with `exec -a`, say, is no file: then the binary itself.
  return candidates.find(isExecutable) ?? execPath;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

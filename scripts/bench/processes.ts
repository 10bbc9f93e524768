/**
 * The benchmark's child processes: started, read line by line, waited for with a deadline, and killed
 * whatever happens, so that a failing scenario leaves no worker behind. Also what Linux's /proc says about
 * a running process: its resident memory and the CPU time it has used.
 *
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";

export interface Exit {
  code: number | null;
  signal: string | null;
  /** performance.now() when the process exited. */
  at: number;
}

export interface Child {
  readonly pid: number;
  /** performance.now() just before the process was spawned. */
  readonly startedAt: number;
  /** Resolves once the process exited and its output was read. */
  readonly done: Promise<Exit>;
  readonly running: boolean;
  /** What it wrote to stderr so far (the last 4,000 characters). */
  stderr(): string;
  /** Sends `signal` if it still runs. */
  signal(signal: NodeJS.Signals): void;
}

export interface StartOptions {
  cwd?: string;
  /** Called with each line the process writes to stdout; without it, stdout goes to /dev/null. */
  onLine?: (line: string) => void;
}

const STDERR_KEPT = 4_000;

/** Every child not known to have exited, for {@link killAll}. */
const live = new Set<Child>();

export function start(command: string, args: string[], options: StartOptions = {}): Child {
  const { onLine } = options;
  const startedAt = performance.now();
  const proc: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    stdio: ["ignore", onLine ? "pipe" : "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-STDERR_KEPT)));
  if (onLine) {
    let partial = "";
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) onLine(line);
    });
    proc.stdout!.on("end", () => partial !== "" && onLine(partial));
  }
  let exitedAt = 0;
  proc.on("exit", () => (exitedAt = performance.now()));
  const done = new Promise<Exit>((resolve, reject) => {
    proc.on("error", reject);
    proc.on("close", (code, signal) => {
      live.delete(child);
      resolve({ code, signal, at: exitedAt || performance.now() });
    });
  });
  const child: Child = {
    pid: proc.pid!,
    startedAt,
    done,
    get running() {
      return proc.exitCode === null && proc.signalCode === null;
    },
    stderr: () => stderr,
    signal(signal) {
      if (!this.running) return;
      // process.kill rather than proc.kill: Deno's ChildProcess ignores kill() after its first call.
      try {
        process.kill(proc.pid!, signal);
      } catch {
        // It exited in the meantime.
      }
    },
  };
  live.add(child);
  return child;
}

/** SIGKILLs every child still running. For the bench's last cleanup, and Ctrl-C. */
export function killAll(): void {
  for (const child of live) child.signal("SIGKILL");
}

/**
 * Runs `fn` with a `start` of its own; whatever `fn` started and left running is SIGKILLed and waited for
 * when it settles, so that a scenario that throws leaves no process behind.
 */
export async function withChildren<T>(fn: (startChild: typeof start) => Promise<T>): Promise<T> {
  const mine: Child[] = [];
  try {
    return await fn((command, args, options) => {
      const child = start(command, args, options);
      mine.push(child);
      return child;
    });
  } finally {
    for (const child of mine) child.signal("SIGKILL");
    await Promise.allSettled(mine.map((child) => child.done));
  }
}

/** The child's exit, failing if it has not exited after `ms`. */
export function exitWithin(child: Child, ms: number, what: string): Promise<Exit> {
  return within(child.done, ms, `${what} to exit`);
}

/** `promise`, or a rejection once `ms` have passed. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Fails unless the process exited by itself with code 0. */
export function assertClean(exit: Exit, child: Child, what: string): void {
  if (exit.code === 0) return;
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  throw new Error(`${what} ${how}: ${child.stderr().trim() || "(nothing on stderr)"}`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The process's resident memory in KiB (VmRSS), or undefined once it has exited. */
export function residentKiB(pid: number): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB$/m);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time the process has used so far, user plus system, in clock ticks (all its threads). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name, field 2, is in parentheses and may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, so 12 and 13 after the name.
  return Number(fields[11]) + Number(fields[12]);
}

/** Clock ticks per second for {@link cpuTicks}: `getconf CLK_TCK`, which is 100 on Linux. */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/**
 * Runs `prismq` commands as functions: `main(argv, io, handlers)` against an in-memory `CliIo` (captured
 * output, files and standard input in memory, signals fired by the test).
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import type { HandlerDefinition, ScheduleDefinition } from "../mod.ts";
import { handlers, schedules } from "../handlers/mod.ts";
import type { CliIo, Signal } from "../src/cli/io.ts";
import { byteLines } from "../src/cli/lines.ts";
import { main } from "../src/cli/main.ts";

export interface FakeIoOptions {
  env?: Record<string, string | undefined>;
  stdin?: string | Uint8Array;
  /** In-memory files by path; `exists` also sees real paths (the database is a real file). */
  files?: Record<string, string | Uint8Array>;
  tty?: boolean;
}

export interface FakeIo extends CliIo {
  readonly out: string;
  readonly err: string;
  /** Calls every handler registered through onSignal, as the process would on a signal. */
  fire(signal: Signal): void;
  /** How many onSignal handlers are subscribed now. */
  readonly signalListeners: number;
}

export function fakeIo(options: FakeIoOptions = {}): FakeIo {
  let out = "";
  let err = "";
  const listeners = new Set<(signal: Signal) => void>();
  const files = new Map(Object.entries(options.files ?? {}));
  const stdin = options.stdin ?? "";
  const tty = options.tty ?? false;
  const bytes = (content: string | Uint8Array) =>
    typeof content === "string" ? new TextEncoder().encode(content) : content;
  return {
    stdout: { write: (text) => void (out += text), isTTY: tty, columns: 120 },
    stderr: { write: (text) => void (err += text), isTTY: tty, columns: 120 },
    env: { ...options.env },
    readStdin: () => Promise.resolve(bytes(stdin)),
    readLines(path, maxLineBytes) {
      const text = path === "-" ? stdin : files.get(path);
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      // In chunks of 64 bytes, so that commands meet lines split across chunks, as they do reading a file.
      const data = bytes(text);
      const chunks = async function* () {
        for (let i = 0; i < data.length; i += 64) yield data.subarray(i, i + 64);
      };
      return byteLines(chunks(), maxLineBytes);
    },
    readFile(path) {
      const text = files.get(path);
      return text === undefined
        ? Promise.reject(new Error(`ENOENT: no such file or directory, open '${path}'`))
        : Promise.resolve(bytes(text));
    },
    fileSize(path) {
      const text = path === "-" ? undefined : files.get(path);
      return text === undefined ? undefined : bytes(text).length;
    },
    exists: (path) => files.has(path) || existsSync(path),
    isFolder: (path) => !files.has(path) && existsSync(path) && statSync(path).isDirectory(),
    onSignal(handler) {
      listeners.add(handler);
      return () => void listeners.delete(handler);
    },
    pid: 4242,
    hostname: "test-host",
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    fire(signal) {
      for (const listener of [...listeners]) listener(signal);
    },
    get signalListeners() {
      return listeners.size;
    },
  };
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export type CliOptions = FakeIoOptions & {
  handlers?: readonly HandlerDefinition[];
  schedules?: readonly ScheduleDefinition[];
};

/** Runs one command line and returns its exit code and output. */
export async function cli(argv: string[], options: CliOptions = {}): Promise<Result> {
  const io = fakeIo(options);
  const code = await main(argv, io, options.handlers ?? handlers, options.schedules ?? schedules);
  return { code, stdout: io.out, stderr: io.err };
}

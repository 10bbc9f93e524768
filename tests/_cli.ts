/**
 * Runs `prismq` commands as functions: `main(argv, io, handlers)` against an in-memory `CliIo` (captured
 * output, files and standard input in memory, signals fired by the test).
 *
 * @module
 */
import { existsSync } from "node:fs";
import type { HandlerDefinition } from "../mod.ts";
import { handlers } from "../handlers/mod.ts";
import type { CliIo, Signal } from "../src/cli/io.ts";
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
  /** Lines as bytes, split at \n (with a \r before it dropped), as the real process splits them. */
  const splitLines = (content: string | Uint8Array) => {
    const data = bytes(content);
    const lines: Uint8Array[] = [];
    let start = 0;
    for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, start)) {
      lines.push(data.subarray(start, i > start && data[i - 1] === 13 ? i - 1 : i));
      start = i + 1;
    }
    if (start < data.length) lines.push(data.subarray(start));
    return lines;
  };
  return {
    stdout: { write: (text) => void (out += text), isTTY: tty, columns: 120 },
    stderr: { write: (text) => void (err += text), isTTY: tty, columns: 120 },
    env: { ...options.env },
    readStdin: () => Promise.resolve(bytes(stdin)),
    async *readLines(path) {
      const text = path === "-" ? stdin : files.get(path);
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      // Two lines per step, so that commands meet several steps, as they do reading a file.
      const lines = [...splitLines(text)];
      for (let i = 0; i < lines.length; i += 2) yield lines.slice(i, i + 2);
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

export type CliOptions = FakeIoOptions & { handlers?: readonly HandlerDefinition[] };

/** Runs one command line and returns its exit code and output. */
export async function cli(argv: string[], options: CliOptions = {}): Promise<Result> {
  const io = fakeIo(options);
  const code = await main(argv, io, options.handlers ?? handlers);
  return { code, stdout: io.out, stderr: io.err };
}

/**
 * The `prismq` process behind the command line, loaded by `prismq.ts`. It links the handlers and schedules of
 * `handlers/mod.ts` (generated, static imports only) and hands the process's streams, files and signals
 * to `main()`.
 *
 * @module
 */
import { createReadStream, existsSync, readFileSync, statSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { isatty } from "node:tty";
import process from "node:process";
import { setTimeout } from "node:timers";
import { handlers, schedules } from "../handlers/mod.ts";
import type { CliIo, Signal } from "../src/cli/io.ts";
import { byteLines } from "../src/cli/lines.ts";
import { main } from "../src/cli/main.ts";

/** Called with "SIGPIPE" when the reader of stdout goes away; see {@link stream}. */
const signalHandlers = new Set<(signal: Signal) => void>();

/** Waited on for a moment when a non-blocking pipe is full; nothing ever wakes it. */
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `bytes` to `fd` before returning. Synchronous on purpose: a reader slower than the worker
 * (a log shipper behind a pipe) then holds the worker back, as a full pipe holds back any Unix program,
 * where a buffered stream keeps every unread line in memory (Bun's does: a worker whose reader paused grew
 * by 55 MB over 200,000 tasks).
 */
function writeAll(fd: 1 | 2, bytes: Uint8Array): void {
  while (bytes.length > 0) {
    try {
      bytes = bytes.subarray(writeOnce(fd, bytes));
    } catch (error) {
      if ((error as NodeJS.ErrnoException)?.code !== "EAGAIN") throw error;
      // Someone made the pipe non-blocking and it is full: give the reader a millisecond.
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/**
 * One write, giving back how much of `bytes` went out. On Deno at most 4 KiB at a time: its writers keep
 * writing until all is out, and when a later write finds a non-blocking pipe full they throw without saying
 * how much had gone, so a retry would write that part twice. A pipe takes 4 KiB (PIPE_BUF) whole or not at
 * all, so a refused write wrote nothing.
 */
const writeOnce: (fd: 1 | 2, bytes: Uint8Array) => number = "Deno" in globalThis
  ? (fd, bytes) => writeSync(fd, bytes.subarray(0, 4096))
  : (fd, bytes) => writeSync(fd, bytes);

/**
 * A process stream for `main()`, written synchronously (see {@link writeAll}). When its reader has gone
 * (`prismq run | head -1`), writing fails with EPIPE: from then on nothing more is written, and a lost
 * stdout asks the command to stop ("SIGPIPE"), so that a worker finishes or hands back its tasks instead of
 * crashing with them.
 */
function stream(fd: 1 | 2) {
  let gone = false;
  const encoder = new TextEncoder();
  // Asked only when needed: the process's stream object is costly to create, and only a terminal needs it.
  const terminal = isatty(fd);
  return {
    write(text: string) {
      if (gone) return;
      try {
        writeAll(fd, encoder.encode(text));
      } catch (error) {
        if ((error as NodeJS.ErrnoException)?.code !== "EPIPE") throw error;
        gone = true;
        if (fd !== 1) return;
        for (const handler of signalHandlers) handler("SIGPIPE");
      }
    },
    get isTTY() {
      return terminal;
    },
    get columns() {
      return terminal ? (fd === 1 ? process.stdout : process.stderr).columns : undefined;
    },
  };
}

async function readAll(input: AsyncIterable<Uint8Array | string>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

const io: CliIo = {
  stdout: stream(1),
  stderr: stream(2),
  env: process.env,
  readStdin: () => readAll(process.stdin),
  readLines: (path, maxLineBytes) =>
    byteLines(path === "-" ? process.stdin : createReadStream(path), maxLineBytes),
  readFile: (path) => Promise.resolve(readFileSync(path)),
  fileSize(path) {
    try {
      return path === "-" ? undefined : statSync(path).size;
    } catch {
      return undefined;
    }
  },
  exists: (path) => existsSync(path),
  isFolder(path) {
    try {
      return statSync(path).isDirectory();
    } catch {
      return false;
    }
  },
  onSignal(handler) {
    const listeners = (["SIGINT", "SIGTERM"] as Signal[]).map((signal) => {
      const listener = () => handler(signal);
      process.on(signal, listener);
      return () => process.off(signal, listener);
    });
    signalHandlers.add(handler);
    return () => {
      listeners.forEach((off) => off());
      signalHandlers.delete(handler);
    };
  },
  pid: process.pid,
  hostname: hostname(),
};

process.exitCode = await main(process.argv.slice(2), io, handlers, schedules);
// The process ends by itself once its output has reached the reader; process.exit() now would cut off
// output still queued for a slow pipe. In case something left open (a stdin nobody read, say) would keep
// a finished command alive, an unreferenced timer ends it a little later.
setTimeout(() => process.exit(), 3000).unref();

#!/usr/bin/env -S deno run -A
/**
 * The `prismq` executable: the real process behind the command line. It links the handlers of
 * `handlers/mod.ts` (generated, static imports only) and hands the process's streams, files and signals
 * to `main()`.
 *
 * @module
 */
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import process from "node:process";
import { createInterface } from "node:readline";
import { handlers } from "../handlers/mod.ts";
import type { CliIo, Signal } from "../src/cli/io.ts";
import { main } from "../src/cli/main.ts";

function stream(target: NodeJS.WriteStream) {
  return {
    write: (text: string) => void target.write(text),
    get isTTY() {
      return target.isTTY === true;
    },
    get columns() {
      return target.columns;
    },
  };
}

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const io: CliIo = {
  stdout: stream(process.stdout),
  stderr: stream(process.stderr),
  env: process.env,
  readStdin: () => readAll(process.stdin),
  readLines(path) {
    const input = path === "-" ? process.stdin : createReadStream(path, { encoding: "utf8" });
    return createInterface({ input, crlfDelay: Infinity });
  },
  readTextFile: (path) => Promise.resolve(readFileSync(path, "utf8")),
  fileSize(path) {
    try {
      return path === "-" ? undefined : statSync(path).size;
    } catch {
      return undefined;
    }
  },
  exists: (path) => existsSync(path),
  onSignal(handler) {
    const listeners = (["SIGINT", "SIGTERM"] as Signal[]).map((signal) => {
      const listener = () => handler(signal);
      process.on(signal, listener);
      return () => process.off(signal, listener);
    });
    return () => listeners.forEach((off) => off());
  },
  pid: process.pid,
  hostname: hostname(),
};

process.exitCode = await main(process.argv.slice(2), io, handlers);
// Open stdin (when a command never read it) or a lingering timer must not keep a finished command alive.
process.exit();

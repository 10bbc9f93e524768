/**
 * What the command line needs from the outside world. Commands receive it as a parameter, so tests run
 * them against in-memory streams and files; `scripts/prismq.ts` supplies the real process.
 *
 * @module
 */

export interface OutputStream {
  write(text: string): void;
  /** Whether the stream is a terminal (live status lines and colours are for terminals only). */
  readonly isTTY: boolean;
  /** Terminal width in characters, when known. */
  readonly columns?: number;
}

export type Signal = "SIGINT" | "SIGTERM";

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Environment variables. */
  env: Record<string, string | undefined>;
  /** All of standard input as text. */
  readStdin(): Promise<string>;
  /** Standard input or a file (`-` means standard input), line by line, without line endings. */
  readLines(path: string): AsyncIterable<string>;
  readTextFile(path: string): Promise<string>;
  /** A file's size in bytes, or undefined for standard input and unknown files. */
  fileSize(path: string): number | undefined;
  /** Whether `path` exists. */
  exists(path: string): boolean;
  /** Calls `handler` on SIGINT or SIGTERM until the returned function is called. */
  onSignal(handler: (signal: Signal) => void): () => void;
  readonly pid: number;
  readonly hostname: string;
}

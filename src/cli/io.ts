/**
 * What the command line needs from the outside world. Commands receive it as a parameter, so tests run
 * them against in-memory streams and files; `scripts/prismq_process.ts` supplies the real process.
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

/**
 * What asks a command to stop. "SIGPIPE" is the reader of stdout going away (`prismq run | head -1`): a
 * request to stop gracefully that never hurries a stop already under way.
 */
export type Signal = "SIGINT" | "SIGTERM" | "SIGPIPE";

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Environment variables. */
  env: Record<string, string | undefined>;
  /** All of standard input, as bytes: commands decode them strictly (see `decodeUtf8`). */
  readStdin(): Promise<Uint8Array>;
  /**
   * Standard input or a file (`-` means standard input), as lines of bytes without their endings, in order,
   * as many at a time as have been read: one step of iteration per line would cost more than most lines.
   * A line longer than `maxLineBytes` comes as `null`, and is never held whole (see `byteLines`).
   */
  readLines(path: string, maxLineBytes: number): AsyncIterable<(Uint8Array | null)[]>;
  readFile(path: string): Promise<Uint8Array>;
  /** A file's size in bytes, or undefined for standard input and unknown files. */
  fileSize(path: string): number | undefined;
  /** Whether `path` exists. */
  exists(path: string): boolean;
  /** Whether `path` is a folder. */
  isFolder(path: string): boolean;
  /** Calls `handler` on SIGINT, SIGTERM or a lost stdout until the returned function is called. */
  onSignal(handler: (signal: Signal) => void): () => void;
  readonly pid: number;
  readonly hostname: string;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Decodes UTF-8, refusing invalid bytes instead of silently replacing them (which would change the data
 * that gets stored). Returns undefined for invalid input.
 */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

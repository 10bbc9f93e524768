/**
 * Text output: tables, ages, numbers and colours (only on a terminal, and never under `NO_COLOR`).
 *
 * @module
 */
import type { CliIo, OutputStream } from "./io.ts";

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const plain: Style = {
  bold: (t) => t,
  dim: (t) => t,
  red: (t) => t,
  green: (t) => t,
  yellow: (t) => t,
  cyan: (t) => t,
};

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;

const ansi: Style = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

/** Colours for `stream`, honouring https://no-color.org. */
export function styleFor(stream: OutputStream, io: Pick<CliIo, "env">): Style {
  const noColor = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== "";
  return stream.isTTY && !noColor ? ansi : plain;
}

/** A task status in its colour. */
export function styleStatus(style: Style, status: string): string {
  switch (status) {
    case "completed":
      return style.green(status);
    case "failed":
      return style.red(status);
    case "running":
      return style.cyan(status);
    case "cancelled":
      return style.dim(status);
    case "waiting":
      return style.yellow(status);
    default:
      return status;
  }
}

// deno-lint-ignore no-control-regex
const ANSI_PATTERN = /\x1b\[[0-9;]*m/g;
// deno-lint-ignore no-control-regex
const ANSI_OR_CHARACTER = /\x1b\[[0-9;]*m|[\s\S]/gu;

/** How many characters of `text` a terminal shows: its code points, less the colour codes. */
export function visibleLength(text: string): number {
  return [...text.replace(ANSI_PATTERN, "")].length;
}

/**
 * `text` cut to show at most `width` characters, the last of them an ellipsis when cut. Colour codes take
 * no room and are kept; a cut line ends by resetting colours, so that none leaks past it.
 */
export function fitWidth(text: string, width: number): string {
  if (visibleLength(text) <= width) return text;
  let shown = 0;
  let styled = false;
  let out = "";
  for (const [piece] of text.matchAll(ANSI_OR_CHARACTER)) {
    if (piece.length > 1 && piece.startsWith("\x1b[")) {
      out += piece;
      styled = true;
      continue;
    }
    if (shown === width - 1) break;
    out += piece;
    shown++;
  }
  return out + (width > 0 ? "…" : "") + (styled ? "\x1b[0m" : "");
}

/** Columns aligned by their widest cell; numbers (and columns named in `right`) align right. */
export function table(headers: string[], rows: string[][], style: Style, right: number[] = []): string {
  const widths = headers.map((header, i) =>
    Math.max(visibleLength(header), ...rows.map((r) => visibleLength(r[i])))
  );
  const line = (cells: string[]) =>
    cells.map((cell, i) => {
      const pad = " ".repeat(widths[i] - visibleLength(cell));
      return right.includes(i) ? pad + cell : i === cells.length - 1 ? cell : cell + pad;
    }).join("  ").trimEnd();
  return [style.bold(line(headers)), ...rows.map(line)].join("\n") + "\n";
}

/** Cuts `text` to `max` characters with an ellipsis, on one line. */
export function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s*\n\s*/g, " ");
  return oneLine.length <= max ? oneLine : oneLine.slice(0, max - 1) + "…";
}

/**
 * 1234567 → "1,234,567", and at most three decimals as in English. Not `toLocaleString`: its first call
 * loads locale data, which costs a command 3 ms under Bun and 20–50 ms under Deno.
 */
export function count(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const magnitude = Math.abs(n);
  const rounded = Number.isInteger(magnitude) ? magnitude : Math.round(magnitude * 1000) / 1000;
  const [whole, fraction] = String(rounded).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+$)/g, ",");
  return (n < 0 ? "-" : "") + grouped + (fraction === undefined ? "" : "." + fraction);
}

/** A duration for people: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min, 3 d 4 h. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** An epoch-milliseconds time as ISO-8601 UTC, or "-" for none. */
export function formatTime(ms: number | null | undefined): string {
  return ms == null ? "-" : new Date(ms).toISOString();
}

/** JSON for `--json` output: two-space indented, one trailing newline. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

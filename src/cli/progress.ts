/**
 * One line on a terminal that is rewritten in place: the worker's live status and the bulk enqueue's
 * progress bar. Updates are throttled so that drawing never costs more than the work it reports.
 *
 * @module
 */
import { fitWidth } from "./format.ts";
import type { OutputStream } from "./io.ts";

const CLEAR_LINE = "\r\x1b[2K";

export class StatusLine {
  #stream: OutputStream;
  #intervalMs: number;
  #lastDraw = 0;
  #text = "";
  #shown = false;

  constructor(stream: OutputStream, intervalMs = 100) {
    this.#stream = stream;
    this.#intervalMs = intervalMs;
  }

  /** Sets the line's text; drawn now if the last draw is older than the interval, or when `force`. */
  update(text: string, force = false): void {
    this.#text = text;
    const now = Date.now();
    if (!force && now - this.#lastDraw < this.#intervalMs) return;
    this.#lastDraw = now;
    // One column short of the width: a terminal wraps a line that fills it, and the next redraw would then
    // clear only the wrapped part.
    const width = this.#stream.columns ?? 120;
    this.#stream.write(CLEAR_LINE + fitWidth(text, width - 1));
    this.#shown = true;
  }

  /** Prints a whole line above the status line, then redraws the status line. */
  print(line: string): void {
    if (this.#shown) this.#stream.write(CLEAR_LINE);
    this.#stream.write(line + "\n");
    if (this.#shown) this.update(this.#text, true);
  }

  /** Draws the last text and ends the line. */
  finish(): void {
    if (this.#text) this.update(this.#text, true);
    if (this.#shown) this.#stream.write("\n");
    this.#shown = false;
  }
}

/** `[██████░░░░] 60%` */
export function bar(fraction: number, width = 24): string {
  const clamped = Math.max(0, Math.min(1, fraction));
  const filled = Math.round(clamped * width);
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${Math.floor(clamped * 100)}%`;
}

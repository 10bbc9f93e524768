/**
 * Splitting a byte stream into lines, in time linear in its length and memory bounded by the longest line
 * allowed: a line that grows past the limit is dropped as soon as it does (reported as `null`), and the
 * rest of it is skipped as it arrives. Decoding is left to the caller.
 *
 * @module
 */

const NEWLINE = 10;
const RETURN = 13;

/** The bytes of `parts`, one after another. */
function joined(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const line = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    line.set(part, at);
    at += part.length;
  }
  return line;
}

/** A line without the `\r` before its newline. */
function withoutReturn(line: Uint8Array): Uint8Array {
  return line.length > 0 && line[line.length - 1] === RETURN ? line.subarray(0, -1) : line;
}

/**
 * The lines of `input`, without their endings (`\n`, or `\r\n`); the lines of each chunk read come
 * together. A line longer than `maxLineBytes` comes as `null`.
 */
export async function* byteLines(
  input: AsyncIterable<Uint8Array | string>,
  maxLineBytes: number,
): AsyncIterable<(Uint8Array | null)[]> {
  const encoder = new TextEncoder();
  /** The line read so far, as the pieces it arrived in; never more than maxLineBytes (+ a `\r`). */
  let parts: Uint8Array[] = [];
  let length = 0;
  /** Set once the current line has passed the limit: its bytes are skipped until its end. */
  let tooLong = false;
  for await (const chunk of input) {
    const data = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    const lines: (Uint8Array | null)[] = [];
    let start = 0;
    for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
      const piece = data.subarray(start, newline);
      if (tooLong || length + piece.length > maxLineBytes + 1) {
        lines.push(null);
      } else {
        parts.push(piece);
        const line = withoutReturn(joined(parts, length + piece.length));
        lines.push(line.length > maxLineBytes ? null : line);
      }
      parts = [];
      length = 0;
      tooLong = false;
      start = newline + 1;
    }
    const rest = data.subarray(start);
    if (!tooLong && rest.length > 0) {
      // One byte more than the limit may be a `\r` before the newline still to come.
      if (length + rest.length > maxLineBytes + 1) {
        tooLong = true;
        parts = [];
        length = 0;
      } else {
        // A copy: the stream may not keep the chunk's bytes as they are once it hands over the next one.
        parts.push(rest.slice());
        length += rest.length;
      }
    }
    if (lines.length > 0) yield lines;
  }
  if (tooLong) yield [null];
  else if (length > 0) {
    const line = withoutReturn(joined(parts, length));
    yield [line.length > maxLineBytes ? null : line];
  }
}

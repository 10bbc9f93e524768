/**
 * JSON text whose integers JavaScript would round: `JSON.parse` turns 12345678901234567890 into
 * 12345678901234567000 without a word, and the task would carry a number its sender never wrote. The
 * command line reads payloads as text, so it can see the digits and refuse them instead.
 *
 * @module
 */

/**
 * The first integer in JSON `text` (outside strings) that a JavaScript number cannot hold exactly, or
 * undefined. Numbers with a fraction or an exponent are floating point by nature and are left alone.
 */
export function firstInexactInteger(text: string): string | undefined {
  // Nearly every payload has no run of 16 digits at all: nothing to scan for.
  if (!/\d{16}/.test(text)) return undefined;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      continue;
    }
    if (c !== "-" && (c < "0" || c > "9")) continue;
    const token = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))?.[0] ?? c;
    const integer = !/[.eE]/.test(token);
    if (integer && !Number.isSafeInteger(Number(token))) return token;
    i += token.length - 1;
  }
  return undefined;
}

/** Why `text` cannot be taken as it is, or undefined when its integers are exact. */
export function inexactIntegerProblem(text: string): string | undefined {
  const token = firstInexactInteger(text);
  if (token === undefined) return undefined;
  return `the number ${token} is beyond what JSON numbers hold exactly here (±9007199254740991) and ` +
    `would become ${Number(token)}; write it as a string`;
}

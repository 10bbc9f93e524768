/**
 * Random names: temporary files, message ids.
 *
 * @module
 */

/**
 * `bytes` random bytes as hex, from Web Crypto: importing `node:crypto` instead adds about 15 ms to every
 * start of the compiled binary under Bun.
 */
export function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (byte) => byte.toString(16).padStart(2, "0"),
  )
    .join("");
}

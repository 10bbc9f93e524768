/**
 * Who a request is: admin, read-only, or nobody. Tokens come from the environment (`PRISMQ_ADMIN_TOKENS`,
 * `PRISMQ_READ_TOKENS`, comma-separated) through the caller. They are compared in constant time, as
 * SHA-256 digests (so that neither a token's length nor its first differing byte shows in the time an
 * answer takes), and never logged or echoed.
 *
 * @module
 */
import { invalidType } from "../errors.ts";

/** What a request may do: read, or read and act. */
export type Role = "admin" | "read";

/** Bearer tokens, each admin or read-only. */
export interface ServerTokens {
  admin: readonly string[];
  read: readonly string[];
}

const MIN_TOKEN_LENGTH = 16;

/**
 * The tokens of one comma-separated list (spaces around each are ignored; empty entries too).
 *
 * @throws {TypeError} for a token shorter than 16 characters or holding characters a header cannot carry
 */
export function parseTokenList(name: string, text: string | undefined): string[] {
  if (text === undefined) return [];
  const tokens = text.split(",").map((token) => token.trim()).filter((token) => token !== "");
  tokens.forEach((token, i) => {
    // Never the token itself in the message: it may end up in a log.
    if (token.length < MIN_TOKEN_LENGTH) {
      throw invalidType(
        `Token ${i + 1} of ${name} is shorter than ${MIN_TOKEN_LENGTH} characters: use long random tokens, ` +
          `such as 'openssl rand -hex 32' makes.`,
      );
    }
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw invalidType(
        `Token ${i + 1} of ${name} holds a character an Authorization header cannot carry: use printable ` +
          `ASCII without spaces or commas.`,
      );
    }
  });
  return tokens;
}

/** Whether any token is configured: without one, every request is admin (loopback only; see the CLI). */
export function hasTokens(tokens: ServerTokens): boolean {
  return tokens.admin.length > 0 || tokens.read.length > 0;
}

/** A token's digests, computed once: each request's token is hashed once and compared with all of them. */
export class TokenChecker {
  readonly #digests: Promise<{ digest: Uint8Array; role: Role }[]>;

  constructor(tokens: ServerTokens) {
    this.#digests = Promise.all([
      ...tokens.admin.map(async (token) => ({ digest: await sha256(token), role: "admin" as const })),
      ...tokens.read.map(async (token) => ({ digest: await sha256(token), role: "read" as const })),
    ]);
  }

  /**
   * The role of `token`, or undefined when no configured token is it. Compares with every configured
   * token, without stopping at a match, so the time does not say which one (or how far) it matched.
   */
  async roleOf(token: string): Promise<Role | undefined> {
    const given = await sha256(token);
    let role: Role | undefined;
    for (const known of await this.#digests) {
      if (sameBytes(given, known.digest) && role !== "admin") role = known.role;
    }
    return role;
  }
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Equal arrays of 32 bytes, comparing all of them whatever the first difference. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ (b[i] ?? 0);
  return difference === 0;
}

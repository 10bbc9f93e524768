/**
 * The one place in the core that knows which runtime it is on. Everything else uses web standards.
 *
 * @module
 */

interface DenoLike {
  env: { get(name: string): string | undefined };
}
interface ProcessLike {
  env: Record<string, string | undefined>;
}

/**
 * Reads an environment variable on Deno, Bun or Node, at call time (never at import time). Returns
 * `undefined` when it is unset or when the runtime does not allow reading it.
 */
export function readEnv(name: string): string | undefined {
  const { Deno, process } = globalThis as { Deno?: DenoLike; process?: ProcessLike };
  try {
    if (Deno) return Deno.env.get(name);
    return process?.env[name];
  } catch {
    // Deno without --allow-env throws; an unreadable variable is an unset one.
    return undefined;
  }
}

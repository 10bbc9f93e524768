/**
 * The address of `--listen` / `--serve`: `host:port`, `[ipv6]:port`, or `:port` (loopback), and whether it
 * is loopback, which decides whether the server may run without a token.
 *
 * @module
 */
import { UsageError } from "./args.ts";

export const DEFAULT_LISTEN = "127.0.0.1:7420";

export interface ListenAddress {
  hostname: string;
  port: number;
  /** Reachable from this machine only. */
  loopback: boolean;
}

/** Parses an address. @throws {UsageError} naming the flag and what to write */
export function parseListenAddress(flag: string, text: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]*)):([0-9]{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new UsageError(
      `${flag} '${text}' is not an address to listen on.`,
      `Write host:port, such as 127.0.0.1:7420, [::1]:7420 or 0.0.0.0:7420 (port 0: any free port).`,
    );
  }
  const hostname = match[1] ?? (match[2] || "127.0.0.1");
  return { hostname, port, loopback: isLoopback(hostname) };
}

/** 127.0.0.0/8, ::1 (and its IPv4-mapped forms) and localhost. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const v4 = host.replace(/^::ffff:/, "");
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The URL a client uses for it. */
export function urlOf(hostname: string, port: number): string {
  return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

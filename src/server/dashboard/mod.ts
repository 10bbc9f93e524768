/**
 * The web dashboard: its page and assets as responses, from the strings built into the code
 * (`assets.ts`, generated from `client/` by `scripts/gen_dashboard.ts`), so that the binary carries them
 * and nothing is read from disk or a CDN at run time.
 *
 * The page is plain HTML with ES modules and a stylesheet served from `/assets/`; it reads the HTTP API with
 * the token the user gives (kept in sessionStorage). Every response carries a strict Content-Security-Policy:
 * scripts and styles only from the server itself, no inline script, no framing.
 *
 * @module
 */
import { DASHBOARD_ASSETS } from "./assets.ts";

/**
 * The Content-Security-Policy of the dashboard's responses: only the server's own scripts, styles and API;
 * no inline script or style attribute, no plugin, no framing, no form posted elsewhere.
 */
export const DASHBOARD_CSP: string = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The paths the dashboard serves: `/` and each file under `/assets/`. */
export const DASHBOARD_PATHS: readonly string[] = Object.keys(DASHBOARD_ASSETS);

/**
 * The dashboard's response to a request, or undefined when the request is not for one of its files (the
 * caller then answers it: an API route, or 404). GET and HEAD only; a request whose `If-None-Match` holds the
 * file's ETag gets 304.
 *
 * @param request the request, as the server received it
 * @returns the response, or undefined for a path or method that is not the dashboard's
 * @example
 * ```ts
 * import { dashboardResponse } from "./mod.ts";
 * const page = dashboardResponse(new Request("http://127.0.0.1:7420/"));
 * console.assert(page?.headers.get("content-type")?.startsWith("text/html"));
 * ```
 */
export function dashboardResponse(request: Request): Response | undefined {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const asset = DASHBOARD_ASSETS[new URL(request.url).pathname];
  if (!asset) return undefined;
  const headers = new Headers({
    "Content-Type": asset.type,
    "Content-Security-Policy": DASHBOARD_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    // Revalidated on each load (cheaply, by ETag), so that an upgraded server never runs yesterday's script.
    "Cache-Control": "no-cache",
    "ETag": asset.etag,
  });
  const seen = request.headers.get("If-None-Match");
  if (seen && seen.split(",").some((tag) => tag.trim() === asset.etag)) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(request.method === "HEAD" ? null : asset.body, { status: 200, headers });
}

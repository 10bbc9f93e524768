/**
 * The shape of one of the dashboard's built-in files (see `assets.ts`, generated from `client/`).
 *
 * @module
 */

/** One file of the dashboard as the server sends it. */
export interface DashboardAsset {
  /** Its Content-Type. */
  type: string;
  /** A strong ETag: a hash of its text, so that a browser revalidates cheaply and never runs stale code. */
  etag: string;
  body: string;
}

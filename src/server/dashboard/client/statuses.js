// The statuses a task can have, in the order the pages show them. The server's own list (the keys of
// /api/stats's counts) decides which appear, so that a status a newer server adds (such as `waiting`, for
// tasks whose dependencies are unfinished) shows up without a change here.

const ORDER = ["waiting", "queued", "running", "completed", "failed", "cancelled"];

/** The statuses of `counts` (an object keyed by status), known ones in their order, then any others. */
export function statusesOf(counts) {
  const keys = Object.keys(counts ?? {});
  if (keys.length === 0) return ORDER.filter((s) => s !== "waiting");
  return [...ORDER.filter((s) => keys.includes(s)), ...keys.filter((k) => !ORDER.includes(k)).sort()];
}

/** Whether a task of this status can be cancelled: it has not finished. */
export function cancellable(status) {
  return status === "waiting" || status === "queued" || status === "running";
}

/** Whether a task of this status can be retried: it failed or was cancelled. */
export function retryable(status) {
  return status === "failed" || status === "cancelled";
}

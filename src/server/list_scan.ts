/**
 * A page of `GET /api/tasks` at a bounded cost. Keyset paging by id reads a page of a common filter in a few
 * index steps, but a rare filter (a payload value one task in thousands has, a status no task has) would
 * walk the whole table to fill a page: on 1,000,000 tasks, up to a second on PostgreSQL. So each request
 * looks at windows of ids from the cursor down, at most {@link MAX_SCANNED_IDS} ids in all, and a page can
 * come back short, or empty, with a `next` that goes on below what it looked at.
 *
 * @module
 */
import type { ListOptions } from "../enqueue_item.ts";
import type { Queue } from "../queue.ts";
import type { Task } from "../task.ts";

/** The ids one query looks at. */
export const SCAN_WINDOW = 25_000;
/** The ids one request looks at, at most: four windows. */
export const MAX_SCANNED_IDS = 100_000;

/** A page of tasks matching `options`, newest first, and the cursor of what comes next (null: nothing). */
export async function scanPage(
  queue: Queue,
  options: ListOptions & { limit: number },
  bounds: { window: number; maxScanned: number } = { window: SCAN_WINDOW, maxScanned: MAX_SCANNED_IDS },
): Promise<{ tasks: Task[]; next: string | null }> {
  const { limit, beforeId, ...filters } = options;
  // The newest id: where a first page starts. One step down the primary key.
  const top = beforeId ?? ((await queue.list({ limit: 1 }))[0]?.id ?? 0) + 1;
  const tasks: Task[] = [];
  let upper = top;
  while (upper > 1 && top - upper < bounds.maxScanned) {
    const fromId = Math.max(1, upper - bounds.window);
    // One more than the page needs: whether more follow in this window is then known, not guessed.
    const found = await queue.list({ ...filters, beforeId: upper, fromId, limit: limit + 1 - tasks.length });
    tasks.push(...found);
    if (tasks.length > limit) {
      const page = tasks.slice(0, limit);
      return { tasks: page, next: String(page[page.length - 1]!.id) };
    }
    upper = fromId;
  }
  return { tasks, next: upper > 1 ? String(upper) : null };
}

/**
 * `backup_database`: writes a consistent copy of the queue database to a file (SQLite's `VACUUM INTO`),
 * while workers keep running.
 *
 * @module
 */
import { lstat, open, realpath, rename, rm, stat } from "node:fs/promises";
import { platform } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import * as v from "valibot";
import { payloadObject } from "./_payload.ts";
import { randomHex } from "./_random.ts";
import { defineHandler, NonRetryableError } from "../mod.ts";

const schema = payloadObject({
  path: v.pipe(
    v.string("must be a file path"),
    v.check((path) => path.trim() !== "", "must not be empty"),
  ),
  overwrite: v.optional(v.boolean("must be true or false"), false),
});

export default defineHandler({
  type: "backup_database",
  schema,
  description: "Writes a consistent copy of the queue database to a file (SQLite VACUUM INTO).",
  version: "1.0.0",
  async handle(task, ctx) {
    const database = localDatabasePath(ctx.db.url);
    // Relative paths are relative to the worker's working folder.
    const target = resolve(task.payload.path);
    const folder = dirname(target);
    const { overwrite } = task.payload;

    if (!(await stat(folder).catch(() => undefined))?.isDirectory()) {
      throw new NonRetryableError(`Cannot back up to ${target}: the folder ${folder} does not exist.`);
    }
    await assertReplaceable(target, overwrite);
    if (await sameFile(target, database)) {
      throw new NonRetryableError(`Cannot back up to ${target}: it is the queue database itself.`);
    }

    // The copy is written beside the target and renamed over it once complete, so a backup that fails
    // halfway never destroys the previous one, nor leaves a truncated file that looks like a backup.
    const temp = join(folder, `.${basename(target)}.${randomHex(6)}.tmp`);
    try {
      await ctx.db.backup(temp);
      await flushToDisk(temp);
      // Again, just before the rename: another writer may have created the target in the meantime.
      await assertReplaceable(target, overwrite);
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await flushToDisk(folder);

    const { size } = await stat(target);
    await ctx.log("info", `Backed up the queue database to ${target} (${size} bytes).`, {
      path: target,
      bytes: size,
    });
  },
});

/**
 * The database's file path, from its libSQL URL (`file:path`, with `%`, `?` and `#` percent-encoded).
 *
 * @throws {NonRetryableError} when the database is not a local file: in memory, or on a libSQL server
 */
function localDatabasePath(url: string): string {
  if (!/^file:/i.test(url)) {
    const where = url === ":memory:" ? "in memory" : `on a ${url.split(":")[0]}: server`;
    throw new NonRetryableError(
      `backup_database copies a local database file, and this queue's database is ${where}.`,
    );
  }
  // `file:///abs/path` has an empty host before the path.
  return decodeURIComponent(url.slice("file:".length).replace(/[?#].*$/s, "").replace(/^\/\/(?=\/)/, ""));
}

/** @throws {NonRetryableError} when `target` exists and may not, or cannot, be replaced by a file */
async function assertReplaceable(target: string, overwrite: boolean): Promise<void> {
  const existing = await lstat(target).catch(() => undefined);
  if (!existing) return;
  if (existing.isDirectory()) {
    throw new NonRetryableError(`Cannot back up to ${target}: it is a folder.`);
  }
  if (!overwrite) {
    throw new NonRetryableError(
      `Cannot back up to ${target}: the file already exists. Pass overwrite: true to replace it.`,
    );
  }
}

/** Whether both paths name the same existing file, through links and relative paths alike. */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [realA, realB] = await Promise.all([realpath(a), realpath(b)].map((p) => p.catch(() => undefined)));
  return realA !== undefined && realA === realB;
}

/**
 * Flushes a file, or a folder's entries, to disk: without it, a power cut soon after the rename could leave
 * an empty file where the previous backup was. Windows cannot open a folder, and needs no folder flush.
 */
async function flushToDisk(path: string): Promise<void> {
  const isFolder = (await stat(path)).isDirectory();
  if (isFolder && platform() === "win32") return;
  const handle = await open(path, isFolder ? "r" : "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

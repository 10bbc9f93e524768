/**
 * Backups of a SQLite database: a consistent copy (`VACUUM INTO`) written to a temporary file beside the
 * target, flushed, then renamed over it, so that a backup that fails halfway never destroys the previous
 * one nor leaves a truncated file that looks like a backup. A target that is a file of a live database
 * (the database, its write-ahead log, its shared-memory index or its journal, by any path or link) is
 * refused: renaming over one of those would destroy that database's committed data.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import { lstat, open, realpath, rename, rm, stat } from "node:fs/promises";
import { platform } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { BackupRefusedError } from "../../errors.ts";
import { randomHex } from "../../random.ts";
import type { BackupResult } from "../types.ts";
import { type Connection, openDatabaseFiles } from "./connection.ts";
import { all } from "./sql.ts";

/** The files SQLite keeps beside a database, by suffix, and what each is. */
const SIDE_FILES: readonly [string, string][] = [
  ["", "the database"],
  ["-wal", "the write-ahead log of the database"],
  ["-shm", "the shared-memory index of the database"],
  ["-journal", "the rollback journal of the database"],
];

/**
 * Writes a consistent copy of `conn`'s database (a file, or one in memory) to `target`, while others keep
 * working: `Store.backupTo` of the SQLite store.
 *
 * @throws {BackupRefusedError} before writing anything, for a target that cannot or may not be replaced
 */
export function backupDatabase(conn: Connection, target: string, overwrite: boolean): Promise<BackupResult> {
  return backupFile(target, overwrite, async (temp) => {
    await all(conn, sql`VACUUM INTO ${temp}`);
  });
}

/**
 * Writes a copy of a database to `target` through `copyTo`, which must write a new file at the path it is
 * given.
 *
 * @throws {BackupRefusedError} before writing anything, for a target that cannot or may not be replaced
 */
async function backupFile(
  target: string,
  overwrite: boolean,
  copyTo: (path: string) => Promise<void>,
): Promise<BackupResult> {
  const path = resolve(target);
  const folder = dirname(path);
  if (!(await stat(folder).catch(() => undefined))?.isDirectory()) {
    throw new BackupRefusedError(`Cannot back up to ${path}: the folder ${folder} does not exist.`);
  }
  await assertReplaceable(path, overwrite);
  const temp = join(folder, `.${basename(path)}.${randomHex(6)}.tmp`);
  try {
    await copyTo(temp);
    await flushToDisk(temp);
    // Again, just before the rename: the target may have been created in the meantime.
    await assertReplaceable(path, overwrite);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await flushToDisk(folder);
  return { path, bytes: (await stat(path)).size };
}

/** @throws {BackupRefusedError} when `path` may not, or cannot, be replaced by a file */
async function assertReplaceable(path: string, overwrite: boolean): Promise<void> {
  const owner = await liveDatabaseFile(path);
  if (owner) {
    throw new BackupRefusedError(
      `Cannot back up to ${path}: it is ${owner}, which is open. Choose a path outside the database's files.`,
    );
  }
  const existing = await lstat(path).catch(() => undefined);
  if (!existing) return;
  if (existing.isDirectory()) throw new BackupRefusedError(`Cannot back up to ${path}: it is a folder.`);
  if (!overwrite) {
    throw new BackupRefusedError(
      `Cannot back up to ${path}: the file already exists. Pass overwrite: true to replace it.`,
    );
  }
}

/**
 * What `path` is among the files of the databases this process has open ("the write-ahead log of the
 * database /srv/queue.db"), or undefined. Paths are compared through symbolic links (of the file and of
 * its folders), and existing files by identity, so a hard link or a second mount counts too.
 */
async function liveDatabaseFile(path: string): Promise<string | undefined> {
  const [forms, identity] = await Promise.all([pathForms(path), fileIdentity(path)]);
  for (const database of openDatabaseFiles()) {
    for (const [suffix, what] of SIDE_FILES) {
      for (const base of await pathForms(database)) {
        const side = base + suffix;
        const sideForms = await pathForms(side);
        if ([...sideForms].some((form) => forms.has(form))) return `${what} ${database}`;
        if (identity !== undefined && identity === await fileIdentity(side)) return `${what} ${database}`;
      }
    }
  }
  return undefined;
}

/** Every spelling of `path` that names the same entry: as given, with its folder's links resolved, and resolved whole. */
async function pathForms(path: string): Promise<Set<string>> {
  const absolute = resolve(path);
  const [folder, whole] = await Promise.all([
    realpath(dirname(absolute)).catch(() => undefined),
    realpath(absolute).catch(() => undefined),
  ]);
  const forms = new Set([absolute]);
  if (folder !== undefined) forms.add(join(folder, basename(absolute)));
  if (whole !== undefined) forms.add(whole);
  return forms;
}

/** The device and inode of an existing file, or undefined. */
async function fileIdentity(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info && `${info.dev}:${info.ino}`;
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

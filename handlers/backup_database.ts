/**
 * `backup_database`: writes a consistent copy of the queue database to a file (SQLite's `VACUUM INTO`),
 * while workers keep running.
 *
 * @module
 */
import * as v from "valibot";
import { payloadObject } from "./_payload.ts";
import { BackupRefusedError, defineHandler, NonRetryableError } from "../mod.ts";

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
    let written: { path: string; bytes: number };
    try {
      // Relative paths are relative to the worker's working folder.
      written = await ctx.db.backup(task.payload.path, { overwrite: task.payload.overwrite });
    } catch (error) {
      // A refusal would be refused again: fail at once. Anything else (a full disk) is worth a retry.
      if (error instanceof BackupRefusedError) throw new NonRetryableError(error.message);
      throw error;
    }
    await ctx.log(
      "info",
      `Backed up the queue database to ${written.path} (${written.bytes} bytes).`,
      written,
    );
  },
});

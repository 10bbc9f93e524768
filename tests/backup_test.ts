/**
 * `QueueDatabase.backup`: a consistent copy written beside its target and renamed into place, and never
 * over a file of a live database, by any path or link.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BackupRefusedError, Queue, QueueDatabase } from "../mod.ts";
import { makeTempDir, rejectionOf, withDb } from "./_helpers.ts";

const FIXTURE = new URL("./fixtures/backup_once.ts", import.meta.url).pathname;

/** The file's size and identity, to show it was left alone. */
function fingerprint(path: string): string {
  if (!existsSync(path)) return "absent";
  const info = statSync(path);
  return `${info.dev}:${info.ino}:${info.size}`;
}

describe("QueueDatabase.backup", () => {
  test("writes a copy that opens as a queue database, and says where and how large", async () => {
    await withDb(async (db, dbPath) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("t", { n: 1 });
      const target = join(dbPath, "..", "copy.db");
      const written = await db.backup(target);
      assert.equal(written.path, target);
      assert.equal(written.bytes, statSync(target).size);
      const copy = new QueueDatabase(target);
      try {
        assert.deepEqual((await new Queue(copy).get(task.id))?.payload, { n: 1 });
      } finally {
        await copy.close();
      }
    });
  });

  test("refuses every file of a live database, by any path or link, and changes nothing", async () => {
    await withDb(async (db, dbPath) => {
      const { dir: other, remove } = makeTempDir("prismq-backup-other-");
      const second = new QueueDatabase(join(other, "second.db"));
      try {
        await second.initializeSchema();
        const queue = new Queue(db);
        await queue.enqueueMany(Array.from({ length: 50 }, (_, i) => ({ type: "t", payload: { i } })));
        const folder = join(dbPath, "..");
        symlinkSync(`${dbPath}-wal`, join(folder, "link-to-wal"));
        symlinkSync(folder, join(folder, "..", `${folder.split("/").pop()}-linked`));
        linkSync(dbPath, join(folder, "hard-link.db"));
        const throughLinkedFolder = join(folder, "..", `${folder.split("/").pop()}-linked`, "queue.db-shm");
        const targets: [string, RegExp][] = [
          [dbPath, /is the database /],
          [`${dbPath}-wal`, /write-ahead log of the database /],
          [`${dbPath}-shm`, /shared-memory index of the database /],
          [`${dbPath}-journal`, /rollback journal of the database /],
          [join(folder, "link-to-wal"), /write-ahead log/],
          [throughLinkedFolder, /shared-memory index/],
          [join(folder, "hard-link.db"), /is the database /],
          [join(other, "second.db-wal"), /write-ahead log of the database .*second\.db/],
        ];
        const files = [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}-journal`];
        const before = files.map(fingerprint);
        const listing = readdirSync(folder).sort();
        for (const [target, message] of targets) {
          const error = await rejectionOf(db.backup(target, { overwrite: true }));
          assert.ok(error instanceof BackupRefusedError, `${target}: ${error}`);
          assert.match(error.message, message, target);
          assert.match(error.message, /which is open/);
        }
        assert.deepEqual(files.map(fingerprint), before, "the database's files were not touched");
        assert.deepEqual(readdirSync(folder).sort(), listing, "no temporary file was left");
        // Every acknowledged task is still there, and the file is sound.
        assert.equal((await queue.stats()).counts.queued, 50);
        const check = await db.transaction((tx) => tx.execute("PRAGMA integrity_check"));
        assert.deepEqual(check.rows, [{ integrity_check: "ok" }]);
      } finally {
        await second.close();
        remove();
      }
    });
  });

  test("refuses a missing folder, a folder, and an existing file without overwrite", async () => {
    await withDb(async (db, dbPath) => {
      const folder = join(dbPath, "..");
      mkdirSync(join(folder, "sub"));
      writeFileSync(join(folder, "old.db"), "previous backup");
      const cases: [string, boolean, RegExp][] = [
        [join(folder, "missing", "copy.db"), true, /the folder .*missing does not exist/],
        [join(folder, "sub"), true, /is a folder/],
        [join(folder, "old.db"), false, /already exists\. Pass overwrite: true/],
      ];
      for (const [target, overwrite, message] of cases) {
        const error = await rejectionOf(db.backup(target, { overwrite }));
        assert.ok(error instanceof BackupRefusedError, `${target}: ${error}`);
        assert.match(error.message, message);
      }
      assert.equal(readFileSync(join(folder, "old.db"), "utf8"), "previous backup");
    });
  });

  test("a backup cut short by a full disk leaves the previous file intact and no temporary file", async () => {
    await withDb(async (db, dbPath) => {
      // About 400 KiB of tasks, copied by a process that may write files of at most 64 KiB.
      await new Queue(db).enqueueMany(
        Array.from({ length: 400 }, (_, i) => ({ type: "t", payload: { i, pad: "x".repeat(1000) } })),
      );
      const backups = makeTempDir("prismq-backup-full-");
      try {
        const target = join(backups.dir, "nightly.db");
        writeFileSync(target, "previous backup");
        // The runtime's path goes in the script's text: Deno rewrites arguments that name its own executable.
        const script = `trap '' XFSZ; ulimit -f 64; exec '${process.execPath}' run -A "$@"`;
        const result = spawnSync("bash", ["-c", script, "bash", FIXTURE, dbPath, target], {
          encoding: "utf8",
        });
        assert.equal(result.status, 1, `the backup did not fail: ${result.stdout}${result.stderr}`);
        assert.doesNotMatch(result.stderr, /BackupRefusedError/);
        assert.match(result.stderr, /full|too large|I\/O/i);
        assert.equal(readFileSync(target, "utf8"), "previous backup");
        assert.deepEqual(readdirSync(backups.dir), ["nightly.db"]);
      } finally {
        backups.remove();
      }
    });
  });

  test("an in-memory database can be backed up to a file", async () => {
    const db = new QueueDatabase(":memory:");
    const { dir, remove } = makeTempDir("prismq-backup-");
    try {
      await db.initializeSchema();
      const task = await new Queue(db).enqueue("t", { n: 2 });
      const target = join(dir, "copy.db");
      await db.backup(target);
      const copy = new QueueDatabase(target);
      try {
        assert.deepEqual((await new Queue(copy).get(task.id))?.payload, { n: 2 });
      } finally {
        await copy.close();
      }
    } finally {
      await db.close();
      remove();
    }
  });
});

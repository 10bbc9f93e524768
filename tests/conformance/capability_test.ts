/**
 * Conformance: what some stores can do and others cannot. Backups to a local file, commit notifications and
 * the server's clock are optional members of the contract: a store that cannot do one lacks the member,
 * exactly as its harness in `_stores.ts` says, and works on without it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BackupRefusedError } from "../../src/errors.ts";
import { CAPABILITY_MEMBERS, describeEachStore } from "./_harness.ts";
import { claimOne, fenceOf, finish, get, insert, newTask, rejection, T0 } from "./_fixtures.ts";

/** Resolves when `listener` has been called, failing after 10 s (a guard against hanging, not a timing check). */
function called(register: (listener: () => void) => () => void): { done: Promise<void>; stop: () => void } {
  let stop = () => {};
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("the commit listener was not called within 10 s")),
      10_000,
    );
    stop = register(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { done, stop: () => stop() };
}

describeEachStore("backups", (it) => {
  it("a backup is a copy of the whole database at a new path, which opens as a store with the same tasks", {
    needs: ["backup"],
  }, async ({ store, dir, openBackup }) => {
    const [a, b] = await insert(store, [newTask({ payload: '{"n":1}' }), newTask({ idempotencyKey: "k" })]);
    const leased = await claimOne(store);
    await finish(store, [{ ...fenceOf(leased), status: "completed" }], T0 + 1);
    await store.taskLogAppend([{ taskId: a!, at: T0, level: "info", message: "logged" }]);
    const path = join(dir, "copy.db");
    const result = await store.backupTo!(path, { overwrite: false });
    assert.deepEqual(result, { path: resolve(path), bytes: statSync(path).size });
    assert.ok(result.bytes > 0);
    const copy = await openBackup(path);
    assert.deepEqual(await copy.taskGet(a!), await get(store, a!));
    assert.deepEqual(await copy.taskGet(b!), await get(store, b!));
    assert.deepEqual(await copy.taskLogList(a!), await store.taskLogList(a!));
    // The copy is a store of its own: what is written to it stays there.
    await insert(copy, 1);
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 2);
  });

  it("a backup refuses an existing file unless told to overwrite it, and never the database's own file", {
    needs: ["backup"],
  }, async ({ store, dir, filePath, openBackup }) => {
    await insert(store, 1);
    const path = join(dir, "existing.db");
    writeFileSync(path, "keep me");
    await rejection(store.backupTo!(path, { overwrite: false }), BackupRefusedError);
    assert.equal(readFileSync(path, "utf8"), "keep me");
    const result = await store.backupTo!(path, { overwrite: true });
    assert.equal(result.bytes, statSync(path).size);
    assert.equal((await (await openBackup(path)).taskList({ limit: 10, offset: 0 })).length, 1);
    if (filePath !== null) {
      await rejection(store.backupTo!(filePath, { overwrite: true }), BackupRefusedError);
      assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 1, "the database is intact");
    }
  });

  it("a store that cannot write backups has no backupTo (QueueDatabase.backup then refuses)", {
    lacking: "backup",
  }, ({ store }) => {
    assert.equal(store.backupTo, undefined);
    return Promise.resolve();
  });
});

describeEachStore("commit notifications", (it) => {
  it("a listener is called after a commit through another handle, and one stopped is not", {
    needs: ["commitNotifications", "secondHandle"],
  }, async ({ store, reopen }) => {
    await insert(store, 1); // a first commit, so that there is a log to watch
    const other = await reopen();
    let stoppedCalls = 0;
    const stopped = store.watchCommits!("tasks", () => stoppedCalls++);
    const watching = called((listener) => store.watchCommits!("tasks", listener));
    stopped();
    await insert(other, 1);
    await watching.done;
    // Listeners are called together, so the stopped one would have been called by now.
    assert.equal(stoppedCalls, 0);
    watching.stop();
  });

  it(
    "a listener is called after the store's own commit",
    { needs: ["commitNotifications"] },
    async ({ store }) => {
      await insert(store, 1);
      const watching = called((listener) => store.watchCommits!("tasks", listener));
      await insert(store, 1);
      await watching.done;
      watching.stop();
    },
  );

  it("a listener stopped twice stays stopped, and the others are still called", {
    needs: ["commitNotifications"],
  }, async ({ store }) => {
    await insert(store, 1);
    let stoppedCalls = 0;
    const stop = store.watchCommits!("tasks", () => stoppedCalls++);
    stop();
    stop();
    const watching = called((listener) => store.watchCommits!("tasks", listener));
    await insert(store, 1);
    await watching.done;
    assert.equal(stoppedCalls, 0);
    watching.stop();
  });

  it(
    "with exact topics, a listener is called once the store starts listening, then after a commit that queues tasks",
    {
      needs: ["commitNotifications", "exactCommitTopics"],
    },
    async ({ store }) => {
      // That claims and completions call no listener of "tasks" is checked where the channel's payloads tell
      // the notifications apart (postgres_store_test.ts): here no call says which commit it follows.
      let listener = () => {};
      const stop = store.watchCommits!("tasks", () => listener());
      try {
        const nextCall = () => called((own) => ((listener = own), () => {}));
        const listening = nextCall();
        await listening.done;
        const queued = nextCall();
        await insert(store, 1);
        await queued.done;
      } finally {
        stop();
      }
    },
  );

  it("a store without commit notifications has no watchCommits, and works on without it", {
    lacking: "commitNotifications",
  }, async ({ store }) => {
    assert.equal(store.watchCommits, undefined);
    await insert(store, 2);
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 2);
  });
});

describeEachStore("capabilities", (it) => {
  it("a store has the optional member of each capability its harness claims, and lacks the others", ({ store, lacks }) => {
    for (const [capability, member] of Object.entries(CAPABILITY_MEMBERS)) {
      const claimed = lacks[capability as keyof typeof CAPABILITY_MEMBERS] === undefined;
      assert.equal(typeof store[member] === "function", claimed, `${capability} (${member})`);
      if (!claimed) assert.equal(store[member], undefined, member);
    }
    const exact = lacks.exactCommitTopics === undefined;
    assert.equal(store.exactCommitTopics, exact ? true : undefined, "exactCommitTopics");
    assert.ok(!exact || typeof store.watchCommits === "function", "exact topics come with watchCommits");
    assert.equal(typeof store.kind, "string");
    assert.ok(store.kind.length > 0);
    return Promise.resolve();
  });
});

describeEachStore("server time", (it) => {
  it("a store on a server reads the server's clock: here the stand-in's, which is this machine's", {
    needs: ["serverTime"],
  }, async ({ store }) => {
    assert.equal(typeof store.serverTime, "function");
    const before = Date.now();
    const time = await store.serverTime!();
    const after = Date.now();
    assert.ok(Number.isSafeInteger(time), `a whole number of milliseconds: ${time}`);
    // The server rounds its own reading to the millisecond.
    assert.ok(time >= before - 1 && time <= after + 1, `${time} lies in [${before}, ${after}]`);
  });

  it(
    "a store without a server has no server time: its users read their own clock",
    { lacking: "serverTime" },
    ({ store }) => {
      assert.equal(store.serverTime, undefined);
      return Promise.resolve();
    },
  );
});

/**
 * Conformance: migrations. A new database is migrated once to every version, a second migration applies
 * nothing and keeps the data, and handles migrating at once apply each version once between them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describeEachStore } from "./_harness.ts";
import { get, insert, T0 } from "./_fixtures.ts";

function assertVersions(versions: number[]): void {
  assert.ok(versions.length > 0, "a new database needs migrating");
  for (const version of versions) {
    assert.ok(Number.isSafeInteger(version) && version > 0, `version ${version}`);
  }
  for (let i = 1; i < versions.length; i++) {
    assert.ok(versions[i]! > versions[i - 1]!, `in order: ${versions}`);
  }
}

describeEachStore("migrations", (it) => {
  it(
    "a new database is migrated to every version in order; migrating again applies nothing and keeps the tasks",
    { migrate: false },
    async ({ store }) => {
      const applied = await store.migrate(T0);
      assertVersions(applied);
      const [id] = await insert(store, 1);
      const task = await get(store, id!);
      assert.deepEqual(await store.migrate(T0 + 1), []);
      assert.deepEqual(await get(store, id!), task);
    },
  );

  it("two handles migrating a new database at once apply each version once between them", {
    migrate: false,
    needs: ["secondHandle"],
  }, async ({ store, reopen }) => {
    const other = await reopen();
    const [mine, theirs] = await Promise.all([store.migrate(T0), other.migrate(T0)]);
    const all = [...mine!, ...theirs!].sort((a, b) => a - b);
    assertVersions(all);
    assert.deepEqual(await store.migrate(T0), []);
    const [id] = await insert(other, 1);
    assert.equal((await get(store, id!)).id, id, "both handles see one database");
  });
});

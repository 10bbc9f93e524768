/**
 * Conformance: electing the leader of work the fleet does once (reaping expired leases now, schedules
 * later). A lease per kind of work, held by one worker at a time until it expires unless renewed; taken over
 * by another once it has expired, or at once after its holder resigns. Stores that elect no leader lack
 * both members, and their workers each do that work.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { LeaderBid, Store } from "../../src/store/store.ts";
import { describeEachStore, T0 } from "./_harness.ts";

const TTL = 1000;

/** A bid for the maintenance lease by `leaderId` at `now`, for {@link TTL}. */
function elect(store: Store, leaderId: string, now: number, name = "maintenance"): Promise<boolean> {
  const bid: LeaderBid = { name, leaderId, now, ttlMs: TTL };
  return store.leaderElect!(bid);
}

describeEachStore("leader election", (it) => {
  it("the first bidder is elected, and no other while its lease lasts, to its deadline included", {
    needs: ["leader"],
  }, async ({ store }) => {
    assert.equal(await elect(store, "a", T0), true);
    assert.equal(await elect(store, "b", T0 + 1), false);
    assert.equal(await elect(store, "b", T0 + TTL), false, "at the deadline");
    assert.equal(await elect(store, "b", T0 + TTL + 1), true, "after it");
    assert.equal(await elect(store, "a", T0 + TTL + 2), false, "the old leader has lost it");
  });

  it("a leader renews its lease; another is elected only once the renewed lease has expired", {
    needs: ["leader"],
  }, async ({ store }) => {
    assert.equal(await elect(store, "a", T0), true);
    assert.equal(await elect(store, "a", T0 + 900), true, "renewed until T0 + 1900");
    assert.equal(await elect(store, "b", T0 + 1500), false);
    assert.equal(await elect(store, "a", T0 + 1800), true, "renewed until T0 + 2800");
    assert.equal(await elect(store, "b", T0 + 2800), false);
    assert.equal(await elect(store, "b", T0 + 2801), true);
  });

  it("a leader whose lease expired renews it while no one else has taken it", {
    needs: ["leader"],
  }, async ({ store }) => {
    assert.equal(await elect(store, "a", T0), true);
    assert.equal(await elect(store, "a", T0 + 5 * TTL), true);
    assert.equal(await elect(store, "b", T0 + 5 * TTL + 1), false);
  });

  it(
    "a leader that resigns lets another be elected at once; resigning a lease one does not hold changes nothing",
    {
      needs: ["leader"],
    },
    async ({ store }) => {
      assert.equal(await elect(store, "a", T0), true);
      assert.equal(await store.leaderResign!("maintenance", "b"), false);
      assert.equal(await elect(store, "b", T0 + 1), false, "a still leads");
      assert.equal(await store.leaderResign!("maintenance", "a"), true);
      assert.equal(await store.leaderResign!("maintenance", "a"), false, "resigned once");
      assert.equal(await elect(store, "b", T0 + 2), true);
      assert.equal(await elect(store, "a", T0 + 3), false);
    },
  );

  it("each kind of work has a leader of its own", { needs: ["leader"] }, async ({ store }) => {
    assert.equal(await elect(store, "a", T0, "maintenance"), true);
    assert.equal(await elect(store, "b", T0, "schedules"), true);
    assert.equal(await elect(store, "b", T0 + 1, "maintenance"), false);
    assert.equal(await elect(store, "a", T0 + 1, "schedules"), false);
    assert.equal(await store.leaderResign!("schedules", "b"), true);
    assert.equal(await elect(store, "a", T0 + 2, "maintenance"), true, "its own lease is untouched");
  });

  it("of many bids at once, on handles of their own, exactly one wins", {
    needs: ["leader", "secondHandle"],
  }, async ({ store, reopen }) => {
    const handles = [store, await reopen(), await reopen(), await reopen()];
    for (let round = 0; round < 5; round++) {
      const now = T0 + round * (TTL + 1);
      const won = await Promise.all(
        Array.from({ length: 16 }, (_, i) => elect(handles[i % handles.length]!, `w${i}`, now)),
      );
      assert.equal(won.filter(Boolean).length, 1, `round ${round}: ${won}`);
    }
  });

  it("a store that elects leaders has both members; one that does not has neither", ({ store, lacks }) => {
    const elects = lacks.leader === undefined;
    assert.equal(typeof store.leaderElect === "function", elects);
    assert.equal(typeof store.leaderResign === "function", elects);
    return Promise.resolve();
  });
});

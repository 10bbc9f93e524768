import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryWindows } from "../scripts/bench/memory_windows.ts";

/** The completions at which a drain of `total` tasks reads its worker's memory. */
function readAt(windows: MemoryWindows, total: number): number[] {
  const at: number[] = [];
  for (let completed = 1; completed <= total; completed++) if (windows.wants(completed)) at.push(completed);
  return at;
}

describe("S6's memory windows", () => {
  test("read 21 times across each window, both ends included, and nowhere between", () => {
    const at = readAt(new MemoryWindows(10_000, 200_000, 20_000), 200_000);
    const step = (from: number) => Array.from({ length: 21 }, (_, i) => from + i * 1_000);
    assert.deepEqual(at, [...step(10_000), ...step(180_000)]);
  });

  test("the growth is the difference of the windows' medians, not of their first and last readings", () => {
    const windows = new MemoryWindows(10, 100, 20);
    const at = readAt(windows, 100);
    assert.equal(at.length, 42);
    // The first reading caught the heap at a low, the last at a high: 90 MiB apart, the rest level.
    const mib = (completed: number) => completed === 10 ? 70 : completed === 100 ? 160 : 115;
    for (const completed of at) windows.record(completed, mib(completed) * 1024);
    assert.deepEqual(windows.medians(), { first: 115, end: 115 });
  });

  test("a reading that failed (the process gone) is left out", () => {
    const windows = new MemoryWindows(10, 100, 20);
    windows.record(10, 1024);
    windows.record(20, undefined);
    windows.record(80, undefined);
    assert.throws(() => windows.medians(), /not read in both windows/);
    windows.record(100, 3072);
    assert.deepEqual(windows.medians(), { first: 1, end: 3 });
  });

  test("windows that would overlap are refused", () => {
    assert.throws(() => new MemoryWindows(10_000, 40_000, 20_000), RangeError);
    assert.throws(() => new MemoryWindows(0, 200_000, 20_000), RangeError);
    assert.doesNotThrow(() => new MemoryWindows(1_000, 5_000, 1_000)); // --tiny
  });
});

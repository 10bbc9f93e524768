/**
 * The one rule for whole numbers: `wholeNumber` (the library's options) and `parseInteger` (the command
 * line's) accept and refuse the same values, and word the range alike.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isWholeNumber, wholeNumber, wholeNumberRange } from "../src/checks.ts";
import { parseInteger, UsageError } from "../src/cli/args.ts";

const MAX = Number.MAX_SAFE_INTEGER;

describe("whole numbers", () => {
  const ranges: [number, number][] = [[1, 1000], [0, MAX], [-1_000_000_000, 1_000_000_000], [1, MAX]];
  const values = [-1_000_000_001, -1, 0, 1, 2, 999, 1000, 1001, MAX, MAX + 1, 1.5, NaN, Infinity];

  test("wholeNumber and parseInteger accept exactly what isWholeNumber accepts", () => {
    for (const [min, max] of ranges) {
      for (const value of values) {
        const ok = isWholeNumber(value, min, max);
        const library = (() => {
          try {
            return wholeNumber("n", value, min, max) === value;
          } catch {
            return false;
          }
        })();
        assert.equal(library, ok, `wholeNumber(${value}) in ${min}..${max}`);
        // Only digits reach the number check from the command line; the others are words to it.
        if (!Number.isSafeInteger(value)) continue;
        const cli = (() => {
          try {
            return parseInteger("--n", String(value), min, max) === value;
          } catch (error) {
            assert.ok(error instanceof UsageError);
            return false;
          }
        })();
        assert.equal(cli, ok, `parseInteger('${value}') in ${min}..${max}`);
      }
    }
  });

  test("both name the range the same way", () => {
    assert.equal(wholeNumberRange(1, 1000), "a whole number from 1 to 1000");
    assert.equal(wholeNumberRange(1), "a whole number ≥ 1");
    assert.equal(wholeNumberRange(-5), `a whole number from -5 to ${MAX}`);
    assert.throws(() => wholeNumber("concurrency", 0, 1, 1000), {
      message: "concurrency must be a whole number from 1 to 1000, got 0.",
    });
    assert.throws(() => parseInteger("--concurrency", "0", 1, 1000), {
      message: "Invalid value '0' for --concurrency: expected a whole number from 1 to 1000.",
    });
  });
});

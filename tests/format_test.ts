import assert from "node:assert/strict";
import { count } from "../src/cli/format.ts";

Deno.test("count groups thousands as English does, without loading locale data", () => {
  for (
    const n of [
      0,
      7,
      999,
      1000,
      12_345,
      1_234_567,
      1_000_000_000,
      -1234,
      12.5,
      1234.5678,
      -0.25,
      2 ** 53,
      81_473_336_545_709,
    ]
  ) {
    assert.equal(count(n), n.toLocaleString("en-US"), `count(${n})`);
  }
  assert.equal(count(Infinity), "Infinity");
  assert.equal(count(NaN), "NaN");
});

/**
 * `byteLines`: lines of a byte stream in linear time, a line past the limit dropped as soon as it passes it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { byteLines } from "../src/cli/lines.ts";

async function collect(chunks: (string | Uint8Array)[], max: number): Promise<(string | null)[]> {
  const source = async function* () {
    yield* chunks;
  };
  const lines: (string | null)[] = [];
  for await (const batch of byteLines(source(), max)) {
    for (const line of batch) lines.push(line === null ? null : new TextDecoder().decode(line));
  }
  return lines;
}

describe("byteLines", () => {
  test("splits at \\n and \\r\\n, across chunk boundaries, keeping a last line without a newline", async () => {
    assert.deepEqual(await collect(["a\nbc", "d\r", "\ne\n\nf"], 100), ["a", "bcd", "e", "", "f"]);
    assert.deepEqual(await collect(["x\r\n"], 100), ["x"]);
    assert.deepEqual(await collect([], 100), []);
  });

  test("a line over the limit comes as null, and the lines around it as they are", async () => {
    const lines = await collect(["ok\n", "x".repeat(10), "y".repeat(10), "z\nafter\n", "1234567890\r\n"], 10);
    assert.deepEqual(lines, ["ok", null, "after", "1234567890"]);
    assert.deepEqual(await collect(["12345678901"], 10), [null], "a last line over the limit");
    assert.deepEqual(await collect(["1234567890\r"], 10), ["1234567890"], "the limit, with a \\r");
  });

  test("a 256 MiB line is skipped as it arrives, holding no more of it than the limit", async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x61); // one buffer, handed over again and again
    // Binary data lives outside the JavaScript heap, counted per isolate as `external`: unlike the process's
    // RSS, it does not move with other test files running beside this one. Its peak is read at every chunk.
    const before = process.memoryUsage().external;
    let peak = 0;
    const source = async function* () {
      for (let i = 0; i < 256; i++) {
        peak = Math.max(peak, process.memoryUsage().external - before);
        yield chunk;
      }
      yield new TextEncoder().encode("\n{}\n");
    };
    const lines: (Uint8Array | null)[] = [];
    for await (const batch of byteLines(source(), 1024 * 1024)) lines.push(...batch);
    assert.deepEqual(lines.map((line) => line === null ? null : new TextDecoder().decode(line)), [
      null,
      "{}",
    ]);
    assert.ok(peak < 64 * 1024 * 1024, `binary data grew by ${Math.round(peak / 1024 / 1024)} MiB`);
  });
});

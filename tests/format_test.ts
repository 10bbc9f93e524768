import assert from "node:assert/strict";
import { count, fitWidth, visibleLength } from "../src/cli/format.ts";
import type { OutputStream } from "../src/cli/io.ts";
import { StatusLine } from "../src/cli/progress.ts";

const bold = (text: string) => `\x1b[1m${text}\x1b[22m`;
const green = (text: string) => `\x1b[32m${text}\x1b[39m`;
// deno-lint-ignore no-control-regex
const COLOURS = /\x1b\[[0-9;]*m/g;

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

Deno.test("visibleLength and fitWidth count the characters a terminal shows, not colour codes", () => {
  const line = `${bold("worker-1")}  done ${green("12")} · running 3`;
  assert.equal(visibleLength(line), "worker-1  done 12 · running 3".length);
  assert.equal(fitWidth(line, 40), line, "a coloured line that fits is left whole");
  const cut = fitWidth(line, 12);
  assert.equal(visibleLength(cut), 12);
  assert.equal(cut.replace(COLOURS, ""), "worker-1  d…");
  assert.ok(cut.startsWith("\x1b[1mworker-1\x1b[22m"), "colour codes before the cut are kept");
  assert.ok(cut.endsWith("…\x1b[0m"), "a cut coloured line resets its colours");
  assert.equal(fitWidth("Grüße, 🌍 and more", 8), "Grüße, …", "characters, not UTF-16 units");
  assert.equal(fitWidth("plain text", 5), "plai…", "no reset where there was no colour");
});

Deno.test("the status line fits a coloured line to the terminal by what it shows", () => {
  let written = "";
  const stream: OutputStream = { write: (text) => void (written += text), isTTY: true, columns: 40 };
  const status = new StatusLine(stream, 0);
  // 37 characters shown, 20 more written: it fits in 40 columns and must not be cut.
  const line = `${bold("worker-1")}  done ${green("12")} · running 3 · 4.0/s`;
  assert.equal(visibleLength(line), 37);
  status.update(line, true);
  assert.equal(written, "\r\x1b[2K" + line);
  written = "";
  status.update(line + " and much more besides", true);
  assert.equal(visibleLength(written.slice("\r\x1b[2K".length)), 39, "one column short of the width");
  assert.ok(written.endsWith("…\x1b[0m"));
});

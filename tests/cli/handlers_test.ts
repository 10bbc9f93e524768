/**
 * `prismq handlers` (`src/cli/commands/handlers.ts`).
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { handlers } from "../../handlers/mod.ts";
import { cli } from "../_cli.ts";
import { TEST_HANDLERS } from "./_fixture.ts";

describe("prismq handlers", () => {
  test("--json describes every linked handler, sorted by type, with its payload fields", async () => {
    const r = await cli(["handlers", "--json"], { handlers: TEST_HANDLERS });
    assert.equal(r.code, 0);
    const described = JSON.parse(r.stdout) as {
      type: string;
      version: string;
      description: string;
      timeoutMs: number | null;
      fields: { name: string; type: string; required: boolean }[];
    }[];
    assert.deepEqual(described.map((h) => h.type), TEST_HANDLERS.map((h) => h.type).sort());
    const noop = described.find((h) => h.type === "noop")!;
    assert.equal(noop.version, "1.0.0");
    assert.match(noop.description, /\S/);
    assert.equal(noop.timeoutMs, null);
    assert.deepEqual(noop.fields, [{ name: "sleepMs", type: "number (integer)", required: false }]);
    assert.deepEqual(described.find((h) => h.type === "chatty")!.fields, [
      { name: "word", type: "string", required: true },
    ]);
  });

  test("as text: a table with one row per handler", async () => {
    const r = await cli(["handlers"]);
    assert.equal(r.code, 0);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^TYPE +VERSION +DESCRIPTION +PAYLOAD$/);
    assert.equal(lines.length, handlers.length + 1);
    assert.ok(lines.some((line) => /^noop +1\.0\.0 .*sleepMs\?: number \(integer\)$/.test(line)));
  });
});

/**
 * Rules about the store's SQL text that no behaviour shows, only speed: checked on the source.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

/** Every source file of the SQLite store, its query files included, as one text. */
function storeSources(): string {
  const folder = new URL("../src/store/sqlite/", import.meta.url);
  return readdirSync(folder, { recursive: true, encoding: "utf8" })
    .filter((path) => path.endsWith(".ts"))
    .sort()
    .map((path) => readFileSync(new URL(path, folder), "utf8"))
    .join("\n");
}

Deno.test("every bound LIMIT and OFFSET in the store goes through bound(), so statements are not prepared again", () => {
  const source = storeSources();
  const limits = [...source.matchAll(/\b(LIMIT|OFFSET)\s+\$\{([^}]*)\}/g)];
  assert.ok(limits.length >= 4, "the store's LIMIT clauses were not found; update this test");
  const bare = limits.filter(([, , value]) => !/^(bound\(|sql\.raw\()/.test(value.trim()));
  assert.deepEqual(
    bare.map(([clause]) => clause),
    [],
    "a bare `LIMIT ?` makes SQLite prepare it again at every run",
  );
});

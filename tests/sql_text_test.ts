/**
 * Rules about the store's SQL text that no behaviour shows, only speed: checked on the source.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

Deno.test("every bound LIMIT and OFFSET in the store goes through bound(), so statements are not prepared again", () => {
  const source = readFileSync(new URL("../src/store/sqlite/store.ts", import.meta.url), "utf8");
  const limits = [...source.matchAll(/\b(LIMIT|OFFSET)\s+\$\{([^}]*)\}/g)];
  assert.ok(limits.length >= 4, "the store's LIMIT clauses were not found; update this test");
  const bare = limits.filter(([, , value]) => !/^(bound\(|sql\.raw\()/.test(value.trim()));
  assert.deepEqual(
    bare.map(([clause]) => clause),
    [],
    "a bare `LIMIT ?` makes SQLite prepare it again at every run",
  );
});

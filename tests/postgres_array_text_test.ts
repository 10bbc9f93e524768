/**
 * PostgreSQL: arrays bound as their text form (the store's own encoding, not the driver's) reach the server
 * element for element, whatever characters a string holds.
 *
 * @module
 */
// Not rerun on libsql: PostgreSQL only.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { arrayText } from "../src/store/postgres/sql.ts";
import { freshSchema, postgresUnavailable } from "./_postgres.ts";

const skip = postgresUnavailable();

const STRINGS = [
  "",
  "plain",
  "NULL",
  "null",
  'a "quoted" word',
  "back\\slash\\",
  '\\"',
  "comma, {braces} and spaces ",
  "\ttab\nnewline",
  "ünïcödé 🙂",
  '{"json": [1, "two", null]}',
];

test("text and bigint arrays as text reach the server unchanged", { skip }, async () => {
  const schema = await freshSchema();
  const sql = postgres(schema.url, { max: 1, onnotice: false });
  try {
    const [texts] = await sql.unsafe("SELECT $1::text[] AS value", [arrayText([...STRINGS, null]) as string]);
    assert.deepEqual(texts!.value, [...STRINGS, null]);
    const numbers = [0, 1, -7, 2 ** 53 - 1, -(2 ** 53 - 1)];
    const [bigints] = await sql.unsafe("SELECT $1::bigint[]::text[] AS value", [
      arrayText(numbers) as string,
    ]);
    assert.deepEqual(bigints!.value, numbers.map(String));
    const [empty] = await sql.unsafe("SELECT cardinality($1::bigint[]) AS n", [arrayText([]) as string]);
    assert.equal(empty!.n, 0);
  } finally {
    await sql.end();
    await schema.drop();
  }
});

test("values it has no text form for are left to the driver", () => {
  const values = [1, { not: "a scalar" }];
  assert.equal(arrayText(values), values);
});

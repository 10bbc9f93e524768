/**
 * `deno task demo [path]`: the original design's demo against a real database file (default
 * `prismq-demo.db` in the current folder).
 */
import process from "node:process";
import { QueueDatabase } from "../mod.ts";
import { runDemo } from "../src/cli/demo.ts";

const path = process.argv[2] ?? "prismq-demo.db";
const db = new QueueDatabase(path);
try {
  console.log(`PrismQ demo on database file '${path}'`);
  await runDemo(db, (line) => console.log(line));
} finally {
  await db.close();
}

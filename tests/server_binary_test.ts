/**
 * `prismq serve` and `prismq run --serve` in the compiled binary (built once with `bun build --compile`,
 * run from an empty folder with a small environment), on a SQLite file and PostgreSQL: the API answers,
 * a `prismq run` process drains what was enqueued over HTTP, and SIGTERM stops each, exit 0.
 *
 * @module
 */
// Not rerun on libsql: the binary is given a small environment of its own, without PRISMQ_SQLITE_ENGINE.
import { after, before, describe, test } from "node:test";
import { baseEnv, buildBinary, start } from "./_binary.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { type Runner, serveAndDrain, workerServes } from "./_serve_scenarios.ts";

describe("the compiled prismq binary serves the API", () => {
  let built: { bin: string; remove: () => void } | undefined;
  before(async () => {
    built = await buildBinary();
  });
  after(() => built?.remove());

  const fromBinary: Runner = (cwd, args, env = {}) =>
    start(built!.bin, args, { cwd, env: { ...baseEnv(), ...env } });

  for (const database of PROCESS_DATABASES) {
    test(`prismq serve on ${database.name}: a prismq run process drains what was enqueued over HTTP`, {
      skip: database.skip,
    }, () => serveAndDrain(fromBinary, database));
    test(
      `prismq run --serve on ${database.name}`,
      { skip: database.skip },
      () => workerServes(fromBinary, database),
    );
  }
});

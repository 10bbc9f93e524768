#!/usr/bin/env -S deno run -A
/**
 * The `prismq` executable. A compiled binary's worker first starts itself again with JavaScriptCore's top
 * tier off (see `src/cli/worker_jit.ts`); that happens before anything else is loaded, so that it costs a
 * few milliseconds. Then `prismq_process.ts` runs the command.
 *
 * @module
 */
import process from "node:process";
import { restartWithoutFtl } from "../src/cli/worker_jit.ts";

restartWithoutFtl(process);
await import("./prismq_process.ts");

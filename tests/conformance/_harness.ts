/**
 * `describeEachStore`: how a conformance test is written once and run on every store of `_stores.ts`, in
 * the spirit of River's `riverdrivertest.Exercise`. A test file defines its tests through the `it` it is
 * given; each becomes one node:test test per store, on a fresh store of its own. Nothing lists the tests:
 * a new test runs on every store, and a store that cannot run it is an explicit skip whose name says why
 * (test runners print the names of skipped tests, not their reasons).
 *
 * @module
 */
import { describe, test } from "node:test";
import type { Store } from "../../src/store/store.ts";
import { type Capability, type OpenedStore, type StoreHarness, STORES } from "./_stores.ts";

export { type Capability, CAPABILITY_MEMBERS, T0 } from "./_stores.ts";

/** What a conformance test is given: the store under test and its surroundings. */
export interface StoreContext extends OpenedStore {
  readonly store: Store;
  /** The store's name, for messages. */
  readonly storeName: string;
  /** The capabilities its harness says it lacks, with the reasons. */
  readonly lacks: StoreHarness["lacks"];
  /**
   * Another fresh store of the same kind, for tests that need many clean starts: closed by its `close`, or
   * at the latest when the test ends.
   */
  fresh(): Promise<OpenedStore>;
}

export interface ConformanceTestOptions {
  /** Capabilities the test needs; on a store without one, the test is skipped with the store's reason. */
  needs?: readonly Capability[];
  /** Only on the stores that lack this capability (a test of how they refuse it). */
  lacking?: Capability;
  /** Open the store without migrating it. */
  migrate?: boolean;
}

export type ConformanceTest = (ctx: StoreContext) => Promise<void>;

/** Defines one conformance test: `it(name, fn)` or `it(name, options, fn)`. */
export interface It {
  (name: string, fn: ConformanceTest): void;
  (name: string, options: ConformanceTestOptions, fn: ConformanceTest): void;
}

interface Defined {
  name: string;
  options: ConformanceTestOptions;
  fn: ConformanceTest;
}

/** `opened`, with a close that does its work once, however often it is called. */
function closedOnce(opened: OpenedStore): OpenedStore {
  let closing: Promise<void> | undefined;
  return { ...opened, close: () => (closing ??= opened.close()) };
}

/** Why `harness` cannot run a test with these options, or undefined when it can. */
export function skipReason(harness: StoreHarness, options: ConformanceTestOptions): string | undefined {
  if (harness.unavailable) return harness.unavailable;
  for (const capability of options.needs ?? []) {
    const why = harness.lacks[capability];
    if (why) return why;
  }
  if (options.lacking && !harness.lacks[options.lacking]) {
    return `this store has ${options.lacking}; the test is of stores without it`;
  }
  return undefined;
}

/**
 * Runs the tests `define` gives on every store: one `describe` per store, named `<area> [<store>]`, one
 * test per definition, each on a fresh store closed (and removed) after it.
 */
export function describeEachStore(area: string, define: (it: It) => void): void {
  const defined: Defined[] = [];
  const it = ((name: string, a: ConformanceTestOptions | ConformanceTest, b?: ConformanceTest) => {
    const [options, fn] = typeof a === "function" ? [{}, a] : [a, b!];
    if (defined.some((d) => d.name === name)) throw new Error(`Two conformance tests named '${name}'.`);
    defined.push({ name, options, fn });
  }) as It;
  define(it);
  for (const harness of STORES) {
    describe(`${area} [${harness.name}]`, () => {
      if (harness.unavailable) {
        // One skip for the whole area: its tests are listed on the stores that run them.
        const skip = harness.unavailable;
        test(`all ${defined.length} tests of this area (skipped: ${skip})`, { skip }, () => {});
        return;
      }
      for (const { name, options, fn } of defined) {
        const skip = skipReason(harness, options);
        if (skip) {
          test(`${name} (skipped: ${skip})`, { skip }, () => {});
          continue;
        }
        test(name, async () => {
          const migrate = options.migrate ?? true;
          const opened: OpenedStore[] = [];
          const open = async () => {
            const store = closedOnce(await harness.open({ migrate }));
            opened.push(store);
            return store;
          };
          const first = await open();
          try {
            await fn({ ...first, storeName: harness.name, lacks: harness.lacks, fresh: open });
          } finally {
            for (const store of opened) await store.close();
          }
        });
      }
    });
  }
}

/**
 * Several hosts on one machine share a real PostgreSQL server: worker processes with host names of their
 * own, whose clocks are off by up to five minutes either way (a skewed `clock` option, tests/fixtures/
 * host_worker.ts). Each corrects its clock to the server's (`QueueDatabase.clockFor`), so none runs a task
 * before it is due, each runs what is due now, none takes another's live lease, and a dead host's lease is
 * taken back once it expires, as the server's clock tells it. Left uncorrected, the skews would break each
 * of these: the host 5 minutes fast would run tasks due in 2 minutes and take live leases; the host 5
 * minutes slow would see tasks due now as 5 minutes away, and hold leases the others see expired.
 *
 * tests/clock_skew_test.ts holds the same in one process against a libSQL stand-in.
 *
 * @module
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase, type RunSummary } from "../mod.ts";
import { makeTempDir, waitFor, within } from "./_helpers.ts";
import { POSTGRES_DATABASE } from "./_databases.ts";

const fixture = new URL("./fixtures/host_worker.ts", import.meta.url).pathname;
const MINUTES_5 = 5 * 60_000;
/** Later than any wait of these tests, and sooner than the 5 minutes of the fastest clock. */
const DUE_LATER_MS = 2 * 60_000;

interface HostOptions {
  host: string;
  skewMs: number;
  leaseMs?: number;
  enqueue?: { type: string; payload?: Record<string, unknown>; delayMs?: number }[];
}

interface Host {
  readonly host: string;
  readonly child: ChildProcess;
  /** The lines it printed so far. */
  readonly lines: string[];
  stderr: string;
  readonly exit: Promise<number | null>;
  /** Sends a line to its stdin. */
  send(line: string): void;
  /** Its run's summary, printed as it exits. */
  summary(): RunSummary;
}

/** The tests' database and folder, and the host processes they start; all stopped and removed after. */
async function withHosts(
  fn: (
    setup: { queue: Queue; start: (options: HostOptions) => Host; ran: () => Map<number, string[]> },
  ) => Promise<void>,
): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-hosts-");
  const { location, drop } = await POSTGRES_DATABASE.create(dir);
  const db = new QueueDatabase(location);
  const hosts: Host[] = [];
  const start = (options: HostOptions): Host => {
    const log = join(dir, `${options.host}.log`);
    const child = spawn(
      process.execPath,
      ["run", "-A", fixture, JSON.stringify({ ...options, db: location, log })],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let partial = "";
    const host: Host = {
      host: options.host,
      child,
      lines: [],
      stderr: "",
      exit: new Promise((resolve) => child.on("exit", (code) => resolve(code))),
      send: (line) => void child.stdin!.write(`${line}\n`),
      summary: () => JSON.parse(host.lines.find((line) => line.startsWith("{")) ?? "null"),
    };
    child.stdin!.on("error", () => {}); // a process killed with its input open
    child.stdout!.on("data", (chunk) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      host.lines.push(...parts);
    });
    child.stderr!.on("data", (chunk) => (host.stderr += chunk));
    hosts.push(host);
    return host;
  };
  /** Who ran each task, from the hosts' logs, in the order they ran it. */
  const ran = () => {
    const runs = new Map<number, string[]>();
    for (const host of hosts) {
      const path = join(dir, `${host.host}.log`);
      if (!existsSync(path)) continue;
      for (const line of readFileSync(path, "utf8").split("\n").filter(Boolean)) {
        const [id, by] = line.split(" ");
        runs.set(Number(id), [...(runs.get(Number(id)) ?? []), by!]);
      }
    }
    return runs;
  };
  try {
    await db.initializeSchema();
    await fn({ queue: new Queue(db), start, ran });
  } finally {
    for (const host of hosts) {
      if (host.child.exitCode === null && host.child.signalCode === null) {
        process.kill(host.child.pid!, "SIGKILL");
      }
    }
    await Promise.all(hosts.map((host) => host.exit));
    await db.close();
    await drop();
    remove();
  }
}

/** Waits for `host` to print `line`. */
function printed(host: Host, line: string): Promise<void> {
  return waitFor(() => host.lines.includes(line), 60_000, `${host.host} to print '${line}'`);
}

/** Stops `hosts` with SIGTERM; each must exit 0 having written nothing to stderr. */
async function stopAll(hosts: Host[]): Promise<void> {
  // process.kill: Deno's child.kill reports its signal as the cause of exit, even of a graceful one.
  for (const host of hosts) process.kill(host.child.pid!, "SIGTERM");
  const codes = await within(60_000, "the hosts to stop", Promise.all(hosts.map((host) => host.exit)));
  for (const host of hosts) assert.equal(host.stderr, "", `${host.host} wrote to stderr`);
  assert.deepEqual(codes, hosts.map(() => 0));
}

const skip = POSTGRES_DATABASE.skip;

test(
  "hosts 5 minutes fast, on time and 5 minutes slow each run what is due now, once, and none runs what is due in 2 minutes",
  {
    skip,
  },
  async () => {
    await withHosts(async ({ queue, start, ran }) => {
      const names = ["host_fast", "host_ontime", "host_slow"];
      const skews = [MINUTES_5, 0, -MINUTES_5];
      const begun = Date.now();
      // Every host enqueues, with its own clock: tasks any host may run, due now and due in 2 minutes, and
      // tasks due now that only one host runs (so that each host, the slow one too, must run some).
      const hosts = names.map((host, i) =>
        start({
          host,
          skewMs: skews[i]!,
          enqueue: [
            ...Array.from({ length: 4 }, () => ({ type: "shared", payload: { due: "now", from: host } })),
            ...Array.from({ length: 3 }, () => ({
              type: "shared",
              payload: { due: "later", from: host },
              delayMs: DUE_LATER_MS,
            })),
            ...names.flatMap((other) =>
              Array.from(
                { length: 2 },
                () => ({ type: `only_${other}`, payload: { due: "now", from: host } }),
              )
            ),
          ],
        })
      );
      await Promise.all(hosts.map((host) => printed(host, "ready")));
      const tasks = await queue.list({ limit: 1000 });
      const dueNow = tasks.filter((task) => (task.payload as { due: string }).due === "now");
      const dueLater = tasks.filter((task) => (task.payload as { due: string }).due === "later");
      assert.deepEqual([dueNow.length, dueLater.length], [3 * 10, 3 * 3]);
      // Every producer wrote the server's time, not its own: within a minute of this machine's clock.
      for (const task of tasks) {
        assert.ok(
          Math.abs(task.createdAt - begun) < 60_000,
          `task ${task.id} from ${
            (task.payload as { from: string }).from
          } was created at ${task.createdAt}, ` +
            `${task.createdAt - begun} ms from the test's start`,
        );
      }

      for (const host of hosts) host.send("go");
      await waitFor(
        async () => (await queue.stats()).counts.completed === dueNow.length,
        60_000,
        "every task due now to complete",
      );
      await stopAll(hosts);
      // The hosts ran well within the 2 minutes: a task due later that did not run was not due yet.
      assert.ok(Date.now() - begun < DUE_LATER_MS, "the test took less than 2 minutes");

      const runs = ran();
      for (const task of dueNow) {
        const by = runs.get(task.id) ?? [];
        assert.equal(by.length, 1, `task ${task.id} (${task.type}) ran ${by.length} times: ${by.join(", ")}`);
        if (task.type.startsWith("only_")) assert.equal(by[0], task.type.slice("only_".length));
      }
      for (const task of dueLater) {
        assert.deepEqual(runs.get(task.id), undefined, `task ${task.id}, due in 2 minutes, ran`);
        const now = (await queue.get(task.id))!;
        assert.deepEqual([now.status, now.attempts], ["queued", 0]);
        assert.equal(now.runAfter - now.createdAt, DUE_LATER_MS);
      }
      for (const host of hosts) {
        const summary = host.summary();
        assert.deepEqual(
          [summary.leaseLost, summary.failed],
          [0, 0],
          `${host.host}: ${JSON.stringify(summary)}`,
        );
        // Its own tasks, 2 from each host, at least.
        assert.ok(summary.completed >= 6, `${host.host} ran its own tasks: ${JSON.stringify(summary)}`);
      }
    });
  },
);

test(
  "a live lease of a host 5 minutes slow is not taken by hosts on time or 5 minutes fast, which take a dead fast host's lease once it expires",
  {
    skip,
  },
  async () => {
    await withHosts(async ({ queue, start, ran }) => {
      // The slow host holds its task, renewing the lease every 2/3 of a second.
      const holder = start({
        host: "host_slow",
        skewMs: -MINUTES_5,
        enqueue: [{ type: "hold", payload: { holder: "host_slow" } }],
      });
      await printed(holder, "ready");
      holder.send("go");
      const [held] = await queue.list({ type: "hold" });
      await printed(holder, `holding ${held!.id}`);

      // A fast host takes a task of its own and dies holding it.
      const victim = start({
        host: "host_fast_dead",
        skewMs: MINUTES_5,
        enqueue: [{ type: "hold", payload: { holder: "host_fast_dead" } }],
      });
      await printed(victim, "ready");
      const dead = (await queue.list({ type: "hold", status: "queued" }))[0]!;
      victim.send("go");
      await printed(victim, `holding ${dead.id}`);
      process.kill(victim.child.pid!, "SIGKILL");
      await victim.exit;

      // Two hosts that reap every lease they see expired, at once and every 100 ms: one on time, one 5
      // minutes fast. They take the dead host's task once its lease is over, which comes after the slow
      // host's first lease would have ended: all that time they leave the live lease alone.
      const takers = [
        start({ host: "host_ontime", skewMs: 0 }),
        start({ host: "host_fast", skewMs: MINUTES_5 }),
      ];
      await Promise.all(takers.map((taker) => printed(taker, "ready")));
      for (const taker of takers) taker.send("go");
      await waitFor(
        async () => (await queue.get(dead.id))!.status === "completed",
        60_000,
        "the dead host's task to be taken back and completed",
      );
      const stillHeld = (await queue.get(held!.id))!;
      assert.deepEqual(
        [stillHeld.status, stillHeld.lockedBy, stillHeld.attempts],
        ["running", "host_slow", 1],
        "the slow host still holds its task",
      );

      holder.send("release");
      await waitFor(async () => (await queue.get(held!.id))!.status === "completed", 60_000, "the release");
      await stopAll([holder, ...takers]);

      const done = (await queue.get(held!.id))!;
      assert.deepEqual([done.lockedBy, done.attempts, done.errorMessage], ["host_slow", 1, null]);
      assert.deepEqual([holder.summary().completed, holder.summary().leaseLost], [1, 0]);
      const retaken = (await queue.get(dead.id))!;
      assert.equal(retaken.attempts, 2);
      assert.match(retaken.errorMessage ?? "", /lease expired: worker host_fast_dead/);
      assert.notEqual(retaken.lockedBy, "host_fast_dead");
      const runs = ran();
      assert.deepEqual(runs.get(held!.id), ["host_slow"]);
      assert.deepEqual(runs.get(dead.id), ["host_fast_dead", retaken.lockedBy]);
    });
  },
);

/**
 * `prismq` itself (`src/cli/main.ts`): the version, help, unknown commands and options, and how an error
 * becomes one line and an exit code.
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { handlers } from "../../handlers/mod.ts";
import { COMMANDS, main } from "../../src/cli/main.ts";
import { VERSION } from "../../src/version.ts";
import { cli, fakeIo } from "../_cli.ts";
import { assertOneLine, makeTempDir, REPO } from "../_helpers.ts";
import { withFixture } from "./_fixture.ts";

describe("prismq: version, help and usage errors", () => {
  test("--version, -V and version print the version and exit 0", async () => {
    for (const word of ["--version", "-V", "version"]) {
      const r = await cli([word]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `prismq ${VERSION}\n`);
      assert.equal(r.stderr, "");
    }
  });

  test("--help lists every command on stdout and exits 0", async () => {
    for (const word of ["--help", "-h", "help"]) {
      const r = await cli([word]);
      assert.equal(r.code, 0);
      assert.equal(r.stderr, "");
      assert.match(r.stdout, /^prismq .*\n\nUsage: prismq <command> \[options\]/);
      for (const command of COMMANDS) assert.match(r.stdout, new RegExp(`\\n  ${command.name} +\\S`));
      assert.match(
        r.stdout,
        /Exit codes: 0 success, 1 failure, 2 usage or validation error, 70 internal error/,
      );
    }
  });

  test("help <cmd> and <cmd> --help print that command's help and exit 0", async () => {
    for (const command of COMMANDS) {
      const viaHelp = await cli(["help", command.name]);
      assert.equal(viaHelp.code, 0, command.name);
      assert.equal(viaHelp.stdout, command.help + "\n");
      const viaFlag = await cli([command.name, "--help"]);
      assert.equal(viaFlag.code, 0, command.name);
      assert.equal(viaFlag.stdout, command.help + "\n");
      assert.match(viaFlag.stdout, /Usage:/);
    }
    const enqueue = await cli(["help", "enqueue"]);
    assert.match(enqueue.stdout, /--ndjson <file \| ->/);
    assert.match(enqueue.stdout, /--idempotency|--key <key>/);
  });

  test("no arguments: the overview on stderr, nothing on stdout, exit 2", async () => {
    const r = await cli([]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /Usage: prismq <command>/);
    for (const command of COMMANDS) assert.match(r.stderr, new RegExp(`\\n  ${command.name} `));
  });

  test("an unknown command exits 2 with one line listing the commands", async () => {
    const r = await cli(["frobnicate"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assertOneLine(r.stderr, /^prismq: Unknown command 'frobnicate'\./, /Commands: run, enqueue, handlers/);
  });

  test("an unknown option exits 2 with one line naming it and the command", async () => {
    await withFixture(async ({ q, dbPath }) => {
      for (
        const [argv, name] of [
          [["status", "--bogus"], "--bogus"],
          [["enqueue", "noop", "--colour", "red"], "--colour"],
          [["run", "--fast"], "--fast"],
          [["list", "-x"], "-x"],
        ] as const
      ) {
        const r = await q([...argv]);
        assert.equal(r.code, 2, argv.join(" "));
        assert.equal(r.stdout, "");
        assertOneLine(r.stderr, new RegExp(`^prismq ${argv[0]}: .*'${name}'`), /--help/);
      }
      assert.equal(existsSync(dbPath), false, "a usage error opens no database");
    });
  });

  test("an option that needs a value and has none exits 2", async () => {
    const r = await cli(["list", "--limit"]);
    assert.equal(r.code, 2);
    assertOneLine(r.stderr, /--limit/);
  });

  test("a value the library refuses (a TypeError of PrismQ's own checks) exits 2 with its message", async () => {
    await withFixture(async ({ q }) => {
      const r = await q(["enqueue", " noop"]);
      assert.equal(r.code, 2);
      assertOneLine(
        r.stderr,
        /^prismq enqueue: Task type ' noop' has leading or trailing whitespace; remove it\.\n$/,
      );
    });
  });

  test("a setting the store refuses (PRISMQ_SQLITE_ENGINE=bogus) is a usage error, exit 2, not a bug", () => {
    // Its own process: the engine is chosen from the process's environment.
    const { dir, remove } = makeTempDir();
    try {
      const r = spawnSync(process.execPath, ["run", "-A", join(REPO, "scripts", "prismq.ts"), "status"], {
        cwd: dir,
        env: { ...process.env, PRISMQ_SQLITE_ENGINE: "bogus", NO_COLOR: "1" },
        encoding: "utf8",
        timeout: 120_000,
      });
      assert.equal(r.status, 2, r.stderr);
      assertOneLine(r.stderr, /PRISMQ_SQLITE_ENGINE must be 'node' or 'libsql', got 'bogus'/);
      assert.doesNotMatch(r.stderr, /bug/);
    } finally {
      remove();
    }
  });

  test("a TypeError or RangeError from a mistake in code is a bug: exit 70, saying so and how to see the stack", async () => {
    for (
      const error of [
        new TypeError("Cannot read properties of undefined (reading 'type')"),
        new RangeError("Invalid array length"),
      ]
    ) {
      for (const debug of [false, true]) {
        const io = fakeIo({ env: debug ? { PRISMQ_DEBUG: "1" } : {} });
        io.stdout.write = () => {
          throw error;
        };
        assert.equal(await main(["handlers"], io, handlers), 70);
        const [first, ...stack] = io.err.split("\n");
        assert.equal(
          first,
          `prismq handlers: internal error, a bug in prismq: ${error.name}: ${error.message}. Run it again ` +
            `with PRISMQ_DEBUG=1 for the stack trace, and report it.`,
        );
        if (debug) assert.match(stack.join("\n"), new RegExp(`^${error.name}: .*\n +at `));
        else assertOneLine(io.err);
      }
    }
  });

  test("a thrown value that is not an Error is a bug too: exit 70", async () => {
    const io = fakeIo();
    io.readStdin = () => Promise.reject("no bytes");
    assert.equal(await main(["enqueue", "noop", "-"], io, handlers), 70);
    assertOneLine(
      io.err,
      /^prismq enqueue: internal error, a bug in prismq: a thrown value: no bytes\. Run it/,
    );
  });

  test("an error from outside (reading standard input fails) exits 1, and is not called a bug", async () => {
    const io = fakeIo();
    io.readStdin = () => Promise.reject(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" }));
    assert.equal(await main(["enqueue", "noop", "-"], io, handlers), 1);
    assert.equal(io.err, "prismq enqueue: EIO: i/o error, read\n");
  });
});

/**
 * When the compiled binary starts its worker again with JavaScriptCore's FTL off, and with what: decided
 * from the process alone, so each case is a process described here (files on PATH are real ones in a
 * temporary folder). The binary itself is run so by tests/cli_binary_test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  FTL_VARIABLE,
  type RestartableProcess,
  RESTARTED_VARIABLE,
  restartWithoutFtl,
} from "../../src/cli/worker_jit.ts";
import { makeTempDir } from "../_helpers.ts";

/** A compiled binary's `prismq run --db q.db`, recording what it would `execve`. */
function binaryProcess(changes: Partial<RestartableProcess> = {}) {
  const calls: { file: string; args: string[]; env: Record<string, string | undefined> }[] = [];
  const process: RestartableProcess = {
    argv: ["bun", "/$bunfs/root/prismq", "run", "--db", "q.db"],
    argv0: "/opt/bin/prismq",
    env: { PATH: "/usr/bin", PRISMQ_DB_URL: "x.db" },
    execPath: "/opt/bin/prismq",
    platform: "linux",
    versions: { bun: "1.4.5" },
    execve: (file, args, env) => void calls.push({ file, args, env }),
    ...changes,
  };
  return { process, calls };
}

describe("restartWithoutFtl", () => {
  test("starts a compiled binary's worker again: same program and arguments, the environment plus FTL off", () => {
    const { process, calls } = binaryProcess({ argv0: "/bin/sh" });
    restartWithoutFtl(process);
    assert.deepEqual(calls, [{
      file: "/bin/sh",
      args: ["/bin/sh", "run", "--db", "q.db"],
      env: { PATH: "/usr/bin", PRISMQ_DB_URL: "x.db", [FTL_VARIABLE]: "0", [RESTARTED_VARIABLE]: "1" },
    }]);
  });

  test("the program as started: a name found on PATH (a link's own name), else the binary itself", () => {
    const { dir, remove } = makeTempDir("prismq-jit-");
    try {
      const worker = join(dir, "myworker");
      writeFileSync(worker, "");
      chmodSync(worker, 0o755);
      const cases: [string, Partial<RestartableProcess>, string][] = [
        ["found on PATH", { argv0: "myworker", env: { PATH: `/nowhere:${dir}` } }, worker],
        ["not on PATH (exec -a)", { argv0: "label", env: { PATH: dir } }, "/opt/bin/prismq"],
        ["a path that is no file", { argv0: "/no/such/file" }, "/opt/bin/prismq"],
      ];
      for (const [name, changes, file] of cases) {
        const { process, calls } = binaryProcess(changes);
        restartWithoutFtl(process);
        assert.equal(calls[0]?.file, file, name);
        assert.equal(calls[0]?.args[0], changes.argv0, `${name}: the name it was started as`);
      }
    } finally {
      remove();
    }
  });

  test("the restarted process takes the restart's variables out of its environment, and does not restart", () => {
    const { process, calls } = binaryProcess({
      env: { PATH: "/usr/bin", [FTL_VARIABLE]: "0", [RESTARTED_VARIABLE]: "1" },
    });
    restartWithoutFtl(process);
    assert.deepEqual(calls, []);
    assert.deepEqual(process.env, { PATH: "/usr/bin" });
  });

  test("leaves a process alone once the variable is set by the user, whatever its value", () => {
    for (const value of ["0", "1", ""]) {
      const { process, calls } = binaryProcess({ env: { [FTL_VARIABLE]: value } });
      restartWithoutFtl(process);
      assert.deepEqual(calls, [], `with ${FTL_VARIABLE}=${value}`);
      assert.equal(process.env[FTL_VARIABLE], value);
    }
  });

  test("leaves every other command, runtime and platform alone", () => {
    const cases: [string, Partial<RestartableProcess>][] = [
      ["another command", { argv: ["bun", "/$bunfs/root/prismq", "status"] }],
      ["no command", { argv: ["bun", "/$bunfs/root/prismq"] }],
      ["Bun running the sources", { argv: ["bun", "/src/scripts/prismq.ts", "run"] }],
      ["Deno or Node", { versions: { node: "20.0.0" } }],
      ["macOS", { platform: "darwin" }],
      ["Windows", { platform: "win32" }],
      ["no execve", { execve: undefined }],
    ];
    for (const [name, changes] of cases) {
      const { process, calls } = binaryProcess(changes);
      restartWithoutFtl(process);
      assert.deepEqual(calls, [], name);
    }
  });

  test("runs on as it is when the binary cannot be started again", () => {
    const { process } = binaryProcess({
      execve: () => {
        throw Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" });
      },
    });
    assert.doesNotThrow(() => restartWithoutFtl(process));
  });
});

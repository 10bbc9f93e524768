/**
 * When the compiled binary starts its worker again with JavaScriptCore's FTL off, and with what: decided
 * from the process alone, so each case is a process described here. The binary itself is run so by
 * tests/cli_binary_test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FTL_VARIABLE, type RestartableProcess, restartWithoutFtl } from "../../src/cli/worker_jit.ts";

/** A compiled binary's `prismq run --db q.db`, recording what it would `execve`. */
function binaryProcess(changes: Partial<RestartableProcess> = {}) {
  const calls: { file: string; args: string[]; env: Record<string, string | undefined> }[] = [];
  const process: RestartableProcess = {
    argv: ["bun", "/$bunfs/root/prismq", "run", "--db", "q.db"],
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
  test("starts a compiled binary's worker again, same binary and arguments, the environment plus FTL off", () => {
    const { process, calls } = binaryProcess();
    restartWithoutFtl(process);
    assert.deepEqual(calls, [{
      file: "/opt/bin/prismq",
      args: ["/opt/bin/prismq", "run", "--db", "q.db"],
      env: { PATH: "/usr/bin", PRISMQ_DB_URL: "x.db", [FTL_VARIABLE]: "0" },
    }]);
  });

  test("leaves a process alone once the variable is set: the user's choice, or the restart done", () => {
    for (const value of ["0", "1", ""]) {
      const { process, calls } = binaryProcess({ env: { [FTL_VARIABLE]: value } });
      restartWithoutFtl(process);
      assert.deepEqual(calls, [], `with ${FTL_VARIABLE}=${value}`);
    }
  });

  test("leaves every other command, runtime and platform alone", () => {
    const cases: [string, Partial<RestartableProcess>][] = [
      ["another command", { argv: ["bun", "/$bunfs/root/prismq", "status"] }],
      ["no command", { argv: ["bun", "/$bunfs/root/prismq"] }],
      ["Bun running the sources", { argv: ["bun", "/src/scripts/prismq.ts", "run"] }],
      ["Deno or Node", { versions: { node: "20.0.0" } }],
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

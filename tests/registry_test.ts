import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  defineHandler,
  defineSchedule,
  getGlobalRegistry,
  resetGlobalRegistry,
  type TaskHandler,
  TaskHandlerAlreadyRegisteredError,
  TaskHandlerNotRegisteredError,
  TaskHandlerRegistry,
} from "../mod.ts";

const noop: TaskHandler = () => {};

/** A registry with handlers for the given types, each a distinct function. */
function registryWith(...types: string[]): TaskHandlerRegistry {
  const registry = new TaskHandlerRegistry();
  for (const type of types) registry.registerHandler(type, () => type);
  return registry;
}

/** Runs `fn` and returns what it threw, failing when it throws nothing. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected the call to throw");
}

describe("registerHandler(type, handler, options)", () => {
  test("a registered handler is returned by getHandler as the very same function", () => {
    const registry = new TaskHandlerRegistry();
    const handler: TaskHandler = () => {};
    registry.registerHandler("send_email", handler);
    assert.equal(registry.getHandler("send_email"), handler);
  });

  test("description and version given as options are kept in the handler info", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("send_email", noop, {
      description: "Sends email notifications",
      version: "2.1.0",
    });
    const info = registry.getHandlerInfo("send_email");
    assert.ok(info);
    assert.equal(info.taskType, "send_email");
    assert.equal(info.handler, noop);
    assert.equal(info.description, "Sends email notifications");
    assert.equal(info.version, "2.1.0");
  });

  test("description defaults to an empty string and version to 1.0.0", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("plain", noop);
    const info = registry.getHandlerInfo("plain");
    assert.ok(info);
    assert.equal(info.description, "");
    assert.equal(info.version, "1.0.0");
  });

  test("a handler registered with a bare function has no schema and no timeout in its info", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("plain", noop);
    const info = registry.getHandlerInfo("plain");
    assert.ok(info);
    assert.equal(info.schema, undefined);
    assert.equal(info.timeoutMs, undefined);
  });

  test("registering a second handler for the same type without allowOverride throws TaskHandlerAlreadyRegisteredError", () => {
    const registry = new TaskHandlerRegistry();
    const first: TaskHandler = () => "first";
    registry.registerHandler("email", first);
    const error = thrownBy(() => registry.registerHandler("email", () => "second"));
    assert.ok(error instanceof TaskHandlerAlreadyRegisteredError);
    assert.equal(error.name, "TaskHandlerAlreadyRegisteredError");
    assert.equal(error.taskType, "email");
    assert.match(error.message, /'email'/);
    assert.match(error.message, /allowOverride/);
    assert.equal(registry.getHandler("email"), first, "the first handler must stay registered");
  });

  test("allowOverride: false behaves like leaving it out", () => {
    const registry = registryWith("email");
    assert.throws(
      () => registry.registerHandler("email", noop, { allowOverride: false }),
      TaskHandlerAlreadyRegisteredError,
    );
  });

  test("allowOverride: true replaces the handler, its description and its version", () => {
    const registry = new TaskHandlerRegistry();
    const v1: TaskHandler = () => "v1";
    const v2: TaskHandler = () => "v2";
    registry.registerHandler("process_payment", v1, { description: "old", version: "1.0.0" });
    registry.registerHandler("process_payment", v2, {
      description: "new",
      version: "2.0.0",
      allowOverride: true,
    });
    assert.equal(registry.getHandler("process_payment"), v2);
    assert.equal(registry.getHandlerInfo("process_payment")?.version, "2.0.0");
    assert.equal(registry.getHandlerInfo("process_payment")?.description, "new");
    assert.deepEqual(registry.getRegisteredTypes(), new Set(["process_payment"]));
  });

  test("allowOverride: true also registers a type that had no handler yet", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("fresh", noop, { allowOverride: true });
    assert.equal(registry.getHandler("fresh"), noop);
  });

  for (const blank of ["", " ", "   ", "\t", "\n"]) {
    test(`an empty or blank task type (${JSON.stringify(blank)}) is refused with a TypeError`, () => {
      const registry = new TaskHandlerRegistry();
      assert.throws(() => registry.registerHandler(blank, noop), {
        name: "TypeError",
        message: /cannot be empty/,
      });
      assert.equal(registry.getRegisteredTypes().size, 0);
    });
  }

  for (const padded of [" email", "email ", "\temail", "email\n", " email "]) {
    test(`a task type with surrounding whitespace (${JSON.stringify(padded)}) is refused with a TypeError`, () => {
      const registry = new TaskHandlerRegistry();
      assert.throws(() => registry.registerHandler(padded, noop), {
        name: "TypeError",
        message: /leading or trailing whitespace/,
      });
      assert.equal(registry.getRegisteredTypes().size, 0);
    });
  }

  test("a task type with whitespace inside it is accepted", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("send email", noop);
    assert.ok(registry.isRegistered("send email"));
  });

  test("a task type that is not a string is refused with a TypeError", () => {
    const registry = new TaskHandlerRegistry();
    assert.throws(() => registry.registerHandler(42 as unknown as string, noop), TypeError);
    assert.throws(() => registry.registerHandler(undefined as unknown as string, noop), TypeError);
    assert.throws(() => registry.registerHandler(null as unknown as string, noop), TypeError);
    assert.equal(registry.getRegisteredTypes().size, 0);
  });

  test("a handler given as a string is refused with a TypeError that says it must be a function", () => {
    const registry = new TaskHandlerRegistry();
    assert.throws(() => registry.registerHandler("task", "not_callable" as unknown as TaskHandler), {
      name: "TypeError",
      message: /'task' must be a function, got the string "not_callable"/,
    });
    assert.equal(registry.isRegistered("task"), false);
  });

  test("a null handler is refused with a TypeError", () => {
    const registry = new TaskHandlerRegistry();
    assert.throws(() => registry.registerHandler("task", null as unknown as TaskHandler), {
      name: "TypeError",
      message: /must be a function, got null/,
    });
    assert.equal(registry.isRegistered("task"), false);
  });

  test("a plain object given as the handler is refused with a TypeError", () => {
    const registry = new TaskHandlerRegistry();
    assert.throws(() => registry.registerHandler("task", { run() {} } as unknown as TaskHandler), {
      name: "TypeError",
      message: /must be a function, got object/,
    });
    assert.equal(registry.isRegistered("task"), false);
  });

  test("a missing handler is refused with a TypeError", () => {
    const registry = new TaskHandlerRegistry();
    assert.throws(() => registry.registerHandler("task", undefined as unknown as TaskHandler), {
      name: "TypeError",
      message: /must be a function, got undefined/,
    });
    assert.equal(registry.isRegistered("task"), false);
  });

  test("a refused override leaves the handler that was registered", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("task", noop);
    assert.throws(
      () => registry.registerHandler("task", "x" as unknown as TaskHandler, { allowOverride: true }),
      TypeError,
    );
    assert.equal(registry.getHandler("task"), noop);
  });
});

describe("registerHandler(definition, options)", () => {
  const greet = defineHandler({
    type: "greet",
    schema: v.object({ name: v.string() }),
    handle: (task) => `hello ${task.payload.name}`,
    description: "Says hello",
    version: "3.2.1",
    timeoutMs: 5000,
  });

  test("a definition is registered under its own type with its handle as the handler", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(greet);
    assert.ok(registry.isRegistered("greet"));
    assert.equal(registry.getHandler("greet"), greet.handle);
  });

  test("the info of a definition carries its description, version, schema and timeoutMs", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(greet);
    const info = registry.getHandlerInfo("greet");
    assert.ok(info);
    assert.equal(info.taskType, "greet");
    assert.equal(info.handler, greet.handle);
    assert.equal(info.description, "Says hello");
    assert.equal(info.version, "3.2.1");
    assert.equal(info.schema, greet.schema);
    assert.equal(info.timeoutMs, 5000);
  });

  test("a definition without description, version or timeout gets the defaults in its info", () => {
    const registry = new TaskHandlerRegistry();
    const schema = v.object({});
    registry.registerHandler(defineHandler({ type: "bare", schema, handle: () => {} }));
    const info = registry.getHandlerInfo("bare");
    assert.ok(info);
    assert.equal(info.description, "");
    assert.equal(info.version, "1.0.0");
    assert.equal(info.schema, schema);
    assert.equal(info.timeoutMs, undefined);
  });

  test("registering a definition for a type already taken throws TaskHandlerAlreadyRegisteredError", () => {
    const registry = registryWith("greet");
    const before = registry.getHandler("greet");
    assert.throws(() => registry.registerHandler(greet), TaskHandlerAlreadyRegisteredError);
    assert.equal(registry.getHandler("greet"), before);
  });

  test("a definition registered twice throws the second time", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(greet);
    assert.throws(() => registry.registerHandler(greet), TaskHandlerAlreadyRegisteredError);
  });

  test("a definition with allowOverride: true replaces a function registered for its type", () => {
    const registry = registryWith("greet");
    registry.registerHandler(greet, { allowOverride: true });
    assert.equal(registry.getHandler("greet"), greet.handle);
    assert.equal(registry.getHandlerInfo("greet")?.version, "3.2.1");
  });

  test("a function with allowOverride: true replaces a definition, dropping its schema and timeout", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(greet);
    registry.registerHandler("greet", noop, { allowOverride: true });
    const info = registry.getHandlerInfo("greet");
    assert.equal(info?.handler, noop);
    assert.equal(info?.schema, undefined);
    assert.equal(info?.timeoutMs, undefined);
    assert.equal(info?.version, "1.0.0");
  });
});

describe("lookups", () => {
  test("isRegistered is true for a registered type and false for any other", () => {
    const registry = registryWith("email");
    assert.equal(registry.isRegistered("email"), true);
    assert.equal(registry.isRegistered("report"), false);
    assert.equal(registry.isRegistered("Email"), false);
    assert.equal(registry.isRegistered(""), false);
  });

  test("names of Object.prototype members are not registered types", () => {
    const registry = registryWith("email");
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) {
      assert.equal(registry.isRegistered(name), false, name);
      assert.equal(registry.getHandlerInfo(name), undefined, name);
      assert.throws(() => registry.getHandler(name), TaskHandlerNotRegisteredError, name);
    }
  });

  test("getRegisteredTypes returns every registered type", () => {
    const registry = registryWith("email", "report", "backup");
    assert.deepEqual(registry.getRegisteredTypes(), new Set(["email", "report", "backup"]));
  });

  test("getRegisteredTypes of an empty registry is an empty set", () => {
    assert.deepEqual(new TaskHandlerRegistry().getRegisteredTypes(), new Set());
  });

  test("changing the set from getRegisteredTypes does not change the registry", () => {
    const registry = registryWith("email");
    const types = registry.getRegisteredTypes();
    types.add("injected");
    types.delete("email");
    assert.equal(registry.isRegistered("injected"), false);
    assert.equal(registry.isRegistered("email"), true);
    assert.deepEqual(registry.getRegisteredTypes(), new Set(["email"]));
    assert.notEqual(registry.getRegisteredTypes(), registry.getRegisteredTypes());
  });

  test("the set from getRegisteredTypes does not follow later registrations", () => {
    const registry = registryWith("email");
    const types = registry.getRegisteredTypes();
    registry.registerHandler("report", noop);
    assert.deepEqual(types, new Set(["email"]));
  });

  test("getHandlerInfo of an unregistered type is undefined", () => {
    assert.equal(registryWith("email").getHandlerInfo("report"), undefined);
  });

  test("the handler info is frozen, so it cannot be altered through the object returned", () => {
    const registry = registryWith("email");
    const info = registry.getHandlerInfo("email");
    assert.ok(info);
    assert.ok(Object.isFrozen(info));
    assert.throws(() => {
      (info as { version: string }).version = "9.9.9";
    }, TypeError);
    assert.equal(registry.getHandlerInfo("email")?.version, "1.0.0");
  });
});

describe("TaskHandlerNotRegisteredError", () => {
  test("getHandler of an unregistered type throws with the sorted list of registered types", () => {
    const registry = registryWith("report", "email", "backup");
    const error = thrownBy(() => registry.getHandler("unknown_task"));
    assert.ok(error instanceof TaskHandlerNotRegisteredError);
    assert.equal(error.name, "TaskHandlerNotRegisteredError");
    assert.equal(
      error.message,
      "No handler registered for task type 'unknown_task'. Registered types: ['backup', 'email', 'report']",
    );
    assert.equal(error.taskType, "unknown_task");
    assert.deepEqual(error.registeredTypes, new Set(["backup", "email", "report"]));
  });

  test("the message of the error lists a single registered type as ['a']", () => {
    const error = thrownBy(() => registryWith("a").getHandler("x"));
    assert.ok(error instanceof TaskHandlerNotRegisteredError);
    assert.equal(error.message, "No handler registered for task type 'x'. Registered types: ['a']");
  });

  test("the message of the error on an empty registry ends in []", () => {
    const error = thrownBy(() => new TaskHandlerRegistry().getHandler("x"));
    assert.ok(error instanceof TaskHandlerNotRegisteredError);
    assert.equal(error.message, "No handler registered for task type 'x'. Registered types: []");
    assert.equal(error.registeredTypes.size, 0);
  });

  test("validateTask accepts a task whose type is registered", () => {
    const registry = registryWith("email");
    assert.doesNotThrow(() => registry.validateTask({ type: "email" }));
  });

  test("validateTask throws for a task whose type is not registered, with the same message", () => {
    const registry = registryWith("b", "a");
    const error = thrownBy(() => registry.validateTask({ type: "x" }));
    assert.ok(error instanceof TaskHandlerNotRegisteredError);
    assert.equal(error.message, "No handler registered for task type 'x'. Registered types: ['a', 'b']");
  });

  test("getHandler after unregisterHandler throws, naming only the types that remain", () => {
    const registry = registryWith("a", "b", "c");
    registry.unregisterHandler("b");
    const error = thrownBy(() => registry.getHandler("b"));
    assert.ok(error instanceof TaskHandlerNotRegisteredError);
    assert.equal(error.message, "No handler registered for task type 'b'. Registered types: ['a', 'c']");
  });
});

describe("unregisterHandler and clear", () => {
  test("unregisterHandler returns true and removes a registered type", () => {
    const registry = registryWith("email", "report");
    assert.equal(registry.unregisterHandler("email"), true);
    assert.equal(registry.isRegistered("email"), false);
    assert.equal(registry.getHandlerInfo("email"), undefined);
    assert.deepEqual(registry.getRegisteredTypes(), new Set(["report"]));
  });

  test("unregisterHandler refuses a type a schedule fires, naming the schedule; after it goes, it works", () => {
    const registry = registryWith("email", "report");
    registry.registerSchedule(defineSchedule({ name: "nightly", type: "report", cron: "0 3 * * *" }));
    assert.throws(() => registry.unregisterHandler("report"), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /'report'.*schedule 'nightly' fires its tasks.*unregisterSchedule/);
      return true;
    });
    assert.equal(registry.isRegistered("report"), true);
    assert.equal(registry.unregisterSchedule("nightly"), true);
    assert.equal(registry.unregisterHandler("report"), true);
  });

  test("unregisterHandler returns false for a type that is not registered and changes nothing", () => {
    const registry = registryWith("email");
    assert.equal(registry.unregisterHandler("report"), false);
    assert.deepEqual(registry.getRegisteredTypes(), new Set(["email"]));
  });

  test("unregisterHandler returns false the second time for the same type", () => {
    const registry = registryWith("email");
    assert.equal(registry.unregisterHandler("email"), true);
    assert.equal(registry.unregisterHandler("email"), false);
  });

  test("a type can be registered again without allowOverride after it was unregistered", () => {
    const registry = registryWith("email");
    registry.unregisterHandler("email");
    registry.registerHandler("email", noop);
    assert.equal(registry.getHandler("email"), noop);
  });

  test("clear removes every handler", () => {
    const registry = registryWith("email", "report", "backup");
    registry.clear();
    assert.equal(registry.getRegisteredTypes().size, 0);
    for (const type of ["email", "report", "backup"]) assert.equal(registry.isRegistered(type), false);
    assert.throws(() => registry.getHandler("email"), {
      message: "No handler registered for task type 'email'. Registered types: []",
    });
  });

  test("after clear a type can be registered again without allowOverride", () => {
    const registry = registryWith("email");
    registry.clear();
    registry.registerHandler("email", noop);
    assert.equal(registry.getHandler("email"), noop);
  });
});

describe("separate registries", () => {
  test("two registries do not share handlers", () => {
    const one = registryWith("email");
    const two = new TaskHandlerRegistry();
    assert.equal(two.isRegistered("email"), false);
    two.registerHandler("report", noop);
    assert.equal(one.isRegistered("report"), false);
  });
});

describe("the global registry", () => {
  test("getGlobalRegistry returns the same instance every time", () => {
    resetGlobalRegistry();
    const first = getGlobalRegistry();
    assert.ok(first instanceof TaskHandlerRegistry);
    assert.equal(getGlobalRegistry(), first);
    first.registerHandler("shared", noop);
    assert.equal(getGlobalRegistry().getHandler("shared"), noop);
    resetGlobalRegistry();
  });

  test("resetGlobalRegistry replaces the global registry with a new, empty one", () => {
    resetGlobalRegistry();
    const before = getGlobalRegistry();
    before.registerHandler("shared", noop);
    resetGlobalRegistry();
    const after = getGlobalRegistry();
    assert.notEqual(after, before);
    assert.equal(after.getRegisteredTypes().size, 0);
    assert.equal(after.isRegistered("shared"), false);
    assert.equal(before.isRegistered("shared"), true, "the old instance is left as it was");
    resetGlobalRegistry();
  });

  test("the global registry is not a registry created with new", () => {
    resetGlobalRegistry();
    const local = new TaskHandlerRegistry();
    local.registerHandler("local_only", noop);
    assert.notEqual(getGlobalRegistry(), local);
    assert.equal(getGlobalRegistry().isRegistered("local_only"), false);
  });
});

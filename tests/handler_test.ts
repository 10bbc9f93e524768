import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  defineHandler,
  parsePayload,
  PayloadValidationError,
  Queue,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../mod.ts";
import { handContext, rejectionOf, runningTask, withDb } from "./_helpers.ts";

/** Whether two types are identical; used for compile-time checks. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

const nameSchema = v.object({ name: v.string() });

describe("defineHandler", () => {
  test("returns a definition holding the type, schema and handle it was given", () => {
    const handle = () => {};
    const definition = defineHandler({ type: "greet", schema: nameSchema, handle });
    assert.equal(definition.type, "greet");
    assert.equal(definition.schema, nameSchema);
    assert.equal(definition.handle, handle);
  });

  test("description defaults to an empty string and version to 1.0.0", () => {
    const definition = defineHandler({ type: "greet", schema: nameSchema, handle: () => {} });
    assert.equal(definition.description, "");
    assert.equal(definition.version, "1.0.0");
  });

  test("description, version and timeoutMs given are kept", () => {
    const definition = defineHandler({
      type: "greet",
      schema: nameSchema,
      handle: () => {},
      description: "Says hello",
      version: "2.0.0",
      timeoutMs: 1500,
    });
    assert.equal(definition.description, "Says hello");
    assert.equal(definition.version, "2.0.0");
    assert.equal(definition.timeoutMs, 1500);
  });

  test("a definition without timeoutMs has no timeoutMs property at all", () => {
    const definition = defineHandler({ type: "greet", schema: nameSchema, handle: () => {} });
    assert.equal("timeoutMs" in definition, false);
  });

  test("the definition is frozen: assigning to it throws and changes nothing", () => {
    const definition = defineHandler({ type: "greet", schema: nameSchema, handle: () => {} });
    assert.ok(Object.isFrozen(definition));
    assert.throws(() => {
      (definition as { type: string }).type = "other";
    }, TypeError);
    assert.equal(definition.type, "greet");
  });

  test("changing the object passed in afterwards does not change the definition", () => {
    const input = { type: "greet", schema: nameSchema, handle: () => {}, version: "1.2.3" };
    const definition = defineHandler(input);
    input.type = "changed";
    input.version = "9.9.9";
    assert.equal(definition.type, "greet");
    assert.equal(definition.version, "1.2.3");
  });

  for (const type of ["", "   ", "\t"]) {
    test(`an empty or blank type (${JSON.stringify(type)}) is refused with a TypeError`, () => {
      assert.throws(() => defineHandler({ type, schema: nameSchema, handle: () => {} }), {
        name: "TypeError",
        message: /cannot be empty/,
      });
    });
  }

  test("a type with surrounding whitespace is refused with a TypeError", () => {
    assert.throws(() => defineHandler({ type: " greet ", schema: nameSchema, handle: () => {} }), {
      name: "TypeError",
      message: /leading or trailing whitespace/,
    });
  });

  test("a type that is not a string is refused with a TypeError", () => {
    assert.throws(
      () => defineHandler({ type: 7 as unknown as string, schema: nameSchema, handle: () => {} }),
      TypeError,
    );
  });

  const notSchemas: [string, unknown][] = [
    ["undefined", undefined],
    ["null", null],
    ["a plain object", { name: "string" }],
    ["the schema factory itself, not called", v.string],
    ["a valibot action rather than a schema", v.minLength(1)],
    ["a string", "object"],
  ];
  for (const [what, schema] of notSchemas) {
    test(`a schema that is ${what} is refused with a TypeError naming the handler`, () => {
      assert.throws(
        () => defineHandler({ type: "greet", schema: schema as v.GenericSchema, handle: () => {} }),
        {
          name: "TypeError",
          message: "The schema of handler 'greet' must be a valibot schema, like v.object({...}).",
        },
      );
    });
  }

  for (const [what, handle] of [["missing", undefined], ["a string", "handle"], ["an object", {}]] as const) {
    test(`a handle that is ${what} is refused with a TypeError naming the handler`, () => {
      assert.throws(
        () =>
          defineHandler({
            type: "greet",
            schema: nameSchema,
            handle: handle as unknown as () => void,
          }),
        { name: "TypeError", message: "The handle of handler 'greet' must be a function." },
      );
    });
  }

  for (const timeoutMs of [0, -1, 1.5, Number.NaN, Infinity]) {
    test(`a timeoutMs of ${timeoutMs} is refused with a RangeError naming the handler and the value`, () => {
      assert.throws(
        () => defineHandler({ type: "greet", schema: nameSchema, handle: () => {}, timeoutMs }),
        {
          name: "RangeError",
          message: `The timeoutMs of handler 'greet' must be a whole number ≥ 1, got ${timeoutMs}.`,
        },
      );
    });
  }

  test("a timeoutMs given as a string is refused with a TypeError", () => {
    assert.throws(
      () =>
        defineHandler({
          type: "greet",
          schema: nameSchema,
          handle: () => {},
          timeoutMs: "100" as unknown as number,
        }),
      {
        name: "TypeError",
        message: "The timeoutMs of handler 'greet' must be a whole number ≥ 1, got a string.",
      },
    );
  });

  test("a timeoutMs of 1 is the smallest accepted", () => {
    assert.equal(
      defineHandler({ type: "greet", schema: nameSchema, handle: () => {}, timeoutMs: 1 }).timeoutMs,
      1,
    );
  });

  test("an async valibot schema is accepted as the schema", () => {
    const schema = v.objectAsync({
      name: v.pipeAsync(v.string(), v.checkAsync((s) => Promise.resolve(s !== ""), "empty")),
    });
    const definition = defineHandler({ type: "greet", schema, handle: () => {} });
    assert.equal(definition.schema, schema);
  });

  test("the payload type of handle is inferred from the schema", () => {
    const definition = defineHandler({
      type: "greet",
      schema: v.object({ name: v.string(), times: v.optional(v.number(), 1) }),
      handle(task) {
        // These lines compile only because task.payload is { name: string; times: number }.
        const shout: string = task.payload.name.toUpperCase();
        const times: number = task.payload.times;
        // @ts-expect-error: `nmae` is not a field of the payload; if the payload were `any`, this would not error.
        void task.payload.nmae;
        return shout.repeat(times);
      },
    });
    type Payload = Parameters<typeof definition.handle>[0]["payload"];
    const exact: Equal<Payload, { name: string; times: number }> = true;
    assert.equal(exact, true);
    assert.equal(definition.handle(runningTask({ name: "ada", times: 2 }), handContext()), "ADAADA");
  });

  test("the payload type of handle is the schema's output, after transforms", () => {
    const definition = defineHandler({
      type: "count",
      schema: v.object({ n: v.pipe(v.string(), v.transform((s) => s.length)) }),
      handle: (task) => task.payload.n + 1,
    });
    type Payload = Parameters<typeof definition.handle>[0]["payload"];
    const exact: Equal<Payload, { n: number }> = true;
    assert.equal(exact, true);
    assert.equal(definition.handle(runningTask({ n: 4 }), handContext()), 5);
  });
});

describe("parsePayload", () => {
  const emailSchema = v.object({
    to: v.pipe(v.string(), v.email()),
    subject: v.string(),
    items: v.optional(v.array(v.object({ id: v.number() })), []),
  });

  test("returns the parsed payload when it is valid", async () => {
    const output = await parsePayload("send_email", emailSchema, {
      to: "ada@example.com",
      subject: "Hi",
      items: [{ id: 1 }],
    });
    assert.deepEqual(output, { to: "ada@example.com", subject: "Hi", items: [{ id: 1 }] });
  });

  test("returns the schema's output, not the input: defaults filled and unknown keys dropped", async () => {
    const input = { to: "ada@example.com", subject: "Hi", extra: true };
    const output = await parsePayload("send_email", emailSchema, input);
    assert.deepEqual(output, { to: "ada@example.com", subject: "Hi", items: [] });
    assert.deepEqual(input, { to: "ada@example.com", subject: "Hi", extra: true }, "the input is left alone");
  });

  test("returns the output of valibot transforms", async () => {
    const schema = v.object({
      name: v.pipe(v.string(), v.trim(), v.toUpperCase()),
      count: v.pipe(v.string(), v.transform((s) => Number.parseInt(s, 10))),
    });
    const output = await parsePayload("t", schema, { name: "  ada ", count: "42" });
    assert.deepEqual(output, { name: "ADA", count: 42 });
  });

  test("an invalid payload throws a PayloadValidationError whose issues name the invalid fields by dot path", async () => {
    const error = await rejectionOf(
      parsePayload("send_email", emailSchema, { subject: "Hi", items: [{ id: 1 }, { id: "2" }] }),
    );
    assert.ok(error instanceof PayloadValidationError);
    assert.equal(error.name, "PayloadValidationError");
    assert.equal(error.taskType, "send_email");
    assert.deepEqual(error.issues.map((issue) => issue.path), ["to", "items.1.id"]);
    for (const issue of error.issues) assert.ok(issue.message.length > 0, `no message for ${issue.path}`);
  });

  test("the message of a PayloadValidationError names the task type and every invalid field", async () => {
    const error = await rejectionOf(
      parsePayload("send_email", emailSchema, { subject: "Hi", items: [{ id: 1 }, { id: "2" }] }),
    );
    assert.ok(error instanceof PayloadValidationError);
    assert.match(error.message, /^Invalid payload for task type 'send_email': /);
    assert.match(error.message, /\bto: /);
    assert.match(error.message, /items\.1\.id: /);
    for (const issue of error.issues) assert.ok(error.message.includes(`${issue.path}: ${issue.message}`));
  });

  test("a field that fails a validation action is named with the action's message", async () => {
    const error = await rejectionOf(
      parsePayload("send_email", emailSchema, { to: "not-an-email", subject: "Hi" }),
    );
    assert.ok(error instanceof PayloadValidationError);
    assert.equal(error.issues.length, 1);
    assert.equal(error.issues[0].path, "to");
    assert.match(error.issues[0].message, /email/i);
  });

  test("a deeply nested invalid field is named by its full dot path", async () => {
    const schema = v.object({ order: v.object({ lines: v.array(v.object({ sku: v.string() })) }) });
    const error = await rejectionOf(
      parsePayload("t", schema, { order: { lines: [{ sku: "a" }, {}, { sku: 3 }] } }),
    );
    assert.ok(error instanceof PayloadValidationError);
    assert.deepEqual(error.issues.map((issue) => issue.path), ["order.lines.1.sku", "order.lines.2.sku"]);
  });

  test("a payload of the wrong kind altogether is reported at (root)", async () => {
    const error = await rejectionOf(parsePayload("send_email", emailSchema, "just a string"));
    assert.ok(error instanceof PayloadValidationError);
    assert.deepEqual(error.issues.map((issue) => issue.path), ["(root)"]);
    assert.match(error.message, /\(root\): /);
  });

  test("works with async schemas built from v.pipeAsync and v.checkAsync", async () => {
    const taken = new Set(["admin"]);
    const schema = v.objectAsync({
      username: v.pipeAsync(
        v.string(),
        v.checkAsync(async (name) => {
          await Promise.resolve();
          return !taken.has(name);
        }, "username is taken"),
      ),
    });
    assert.deepEqual(await parsePayload("signup", schema, { username: "ada" }), { username: "ada" });
    const error = await rejectionOf(parsePayload("signup", schema, { username: "admin" }));
    assert.ok(error instanceof PayloadValidationError);
    assert.deepEqual(error.issues, [{ path: "username", message: "username is taken" }]);
    assert.equal(error.message, "Invalid payload for task type 'signup': username: username is taken");
  });

  test("async schemas apply async transforms to the output", async () => {
    const schema = v.objectAsync({
      id: v.pipeAsync(v.string(), v.transformAsync((s) => Promise.resolve(`user:${s}`))),
    });
    assert.deepEqual(await parsePayload("t", schema, { id: "7" }), { id: "user:7" });
  });
});

describe("definitions in a worker", () => {
  test("a worker passes the parsed payload, after transforms, to a definition's handle", async () => {
    await withDb(async (db) => {
      const seen: number[] = [];
      const registry = new TaskHandlerRegistry();
      registry.registerHandler(defineHandler({
        type: "count",
        schema: v.object({ text: v.pipe(v.string(), v.transform((s) => s.length)) }),
        handle: (task) => void seen.push(task.payload.text),
      }));
      const task = await new Queue(db, { registry }).enqueue("count", { text: "hello" });
      const worker = new WorkerEngine({ db, workerId: "w1", handlerRegistry: registry });
      assert.equal(await worker.claimAndProcess(), true);
      assert.deepEqual(seen, [5]);
      assert.equal((await new Queue(db).get(task.id))?.status, "completed");
    });
  });

  test("a stored payload that fails the schema fails the task at once, naming the field, without running handle", async () => {
    await withDb(async (db) => {
      let ran = false;
      const registry = new TaskHandlerRegistry();
      registry.registerHandler(defineHandler({
        type: "greet",
        schema: nameSchema,
        handle: () => void (ran = true),
      }));
      // A queue without a registry does not check payloads, so the bad payload reaches the worker.
      const task = await new Queue(db).enqueue("greet", { name: 5 });
      const worker = new WorkerEngine({ db, workerId: "w1", handlerRegistry: registry });
      assert.equal(await worker.claimAndProcess(), true);
      const after = await new Queue(db).get(task.id);
      assert.equal(ran, false);
      assert.equal(after?.status, "failed");
      assert.equal(after?.attempts, 1);
      assert.match(after?.errorMessage ?? "", /Invalid payload for task type 'greet': name: /);
    });
  });

  test("a queue bound to the registry refuses an invalid payload at enqueue and writes nothing", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      registry.registerHandler(defineHandler({ type: "greet", schema: nameSchema, handle: () => {} }));
      const queue = new Queue(db, { registry });
      const error = await rejectionOf(queue.enqueue("greet", { nmae: "Ada" }));
      assert.ok(error instanceof PayloadValidationError);
      assert.deepEqual(error.issues.map((issue) => issue.path), ["name"]);
      assert.deepEqual(await queue.list(), []);
    });
  });
});

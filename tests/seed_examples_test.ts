/**
 * Every code example of the original design (the seed's SEED.md, "Task Handler Registry"), translated to
 * PrismQ's TypeScript API and checked. Test names start with the section of the seed they come from.
 */
import { after, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  defineHandler,
  getGlobalRegistry,
  NonRetryableError,
  PayloadValidationError,
  Queue,
  QueueDatabase,
  resetGlobalRegistry,
  type Task,
  type TaskHandler,
  TaskHandlerAlreadyRegisteredError,
  TaskHandlerNotRegisteredError,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../mod.ts";
import { handContext, rejectionOf, withDb } from "./_helpers.ts";

/** Reads a task back, failing when it is gone. */
async function reload(db: QueueDatabase, id: number): Promise<Task> {
  const task = await new Queue(db).get(id);
  assert.ok(task, `task ${id} should exist`);
  return task;
}

// Each test that touches the global registry resets it itself; this leaves it clean for whatever runs next.
after(() => resetGlobalRegistry());

describe("Quick Start", () => {
  test("Basic Usage: a worker given the registry routes a send_email task to the registered handler", async () => {
    await withDb(async (db) => {
      const outbox: { to: string; subject: string; body: string }[] = [];
      const sendEmail = (email: { to: string; subject: string; body: string }) => void outbox.push(email);

      // Create a registry
      const registry = new TaskHandlerRegistry();

      // Define a task handler
      const emailHandler: TaskHandler<{ to: string; subject: string; body: string }> = (task) => {
        const payload = task.payload;
        sendEmail({ to: payload.to, subject: payload.subject, body: payload.body });
      };

      // Register the handler
      registry.registerHandler("send_email", emailHandler, {
        description: "Sends email notifications",
        version: "1.0.0",
      });

      const { id } = await new Queue(db).enqueue("send_email", {
        to: "ada@example.com",
        subject: "Welcome",
        body: "Hello Ada",
      });

      // Create worker with registry
      const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });

      // Worker will only process registered task types; it routes tasks to the correct handlers
      const summary = await worker.runLoop({ untilEmpty: true });

      assert.deepEqual(outbox, [{ to: "ada@example.com", subject: "Welcome", body: "Hello Ada" }]);
      assert.equal(summary.completed, 1);
      assert.equal(summary.failed, 0);
      const task = await reload(db, id);
      assert.equal(task.status, "completed");
      assert.equal(task.lockedBy, "worker-01");
      assert.equal(registry.getHandlerInfo("send_email")?.description, "Sends email notifications");
    });
  });

  test("Using Global Registry: handlers registered on the singleton serve every worker that is given it", async () => {
    resetGlobalRegistry();
    try {
      await withDb(async (db) => {
        const ran: string[] = [];
        const handler1: TaskHandler = (task) => void ran.push(`handler_1:${task.type}`);
        const handler2: TaskHandler = (task) => void ran.push(`handler_2:${task.type}`);

        // Get the singleton global registry
        const registry = getGlobalRegistry();

        // Register handlers
        registry.registerHandler("task_type_1", handler1);
        registry.registerHandler("task_type_2", handler2);

        const queue = new Queue(db);
        await queue.enqueue("task_type_1", {});
        await queue.enqueue("task_type_2", {});

        // All workers can use the global registry
        const worker1 = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: getGlobalRegistry() });
        const worker2 = new WorkerEngine({ db, workerId: "worker-02", handlerRegistry: getGlobalRegistry() });
        assert.equal(await worker1.claimAndProcess(), true);
        assert.equal(await worker2.claimAndProcess(), true);

        assert.deepEqual(ran, ["handler_1:task_type_1", "handler_2:task_type_2"]);
        assert.equal(getGlobalRegistry(), registry);
      });
    } finally {
      resetGlobalRegistry();
    }
  });
});

describe("API Reference", () => {
  test("register_handler: my_task is registered with its description and version, and its handler runs", async () => {
    await withDb(async (db) => {
      const printed: string[] = [];
      const registry = new TaskHandlerRegistry();

      const myHandler: TaskHandler = (task) => void printed.push(`Processing ${task.type}`);

      registry.registerHandler("my_task", myHandler, { description: "My custom handler", version: "1.0.0" });

      assert.deepEqual(registry.getHandlerInfo("my_task"), {
        taskType: "my_task",
        handler: myHandler,
        description: "My custom handler",
        version: "1.0.0",
      });
      await new Queue(db).enqueue("my_task", {});
      await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry }).claimAndProcess();
      assert.deepEqual(printed, ["Processing my_task"]);
    });
  });

  test("register_handler: a duplicate raises TaskHandlerAlreadyRegisteredError, an empty type or a non-function a TypeError", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("my_task", () => {});
    assert.throws(() => registry.registerHandler("my_task", () => {}), TaskHandlerAlreadyRegisteredError);
    assert.throws(() => registry.registerHandler("", () => {}), TypeError);
    assert.throws(() => registry.registerHandler("other", 42 as unknown as TaskHandler), TypeError);
  });

  test("get_handler: the handler got for send_email can be called with a task", async () => {
    await withDb(async (db) => {
      const sentTo: string[] = [];
      const registry = new TaskHandlerRegistry();
      registry.registerHandler(
        "send_email",
        (task: Task<{ to: string }>) => void sentTo.push(task.payload.to),
      );
      const task = await new Queue(db).enqueue("send_email", { to: "ada@example.com" });

      const handler = registry.getHandler("send_email");
      await handler(task, handContext());

      assert.deepEqual(sentTo, ["ada@example.com"]);
    });
  });

  test("get_handler: a type without a handler raises TaskHandlerNotRegisteredError", () => {
    const registry = new TaskHandlerRegistry();
    assert.throws(() => registry.getHandler("send_email"), TaskHandlerNotRegisteredError);
  });

  test("is_registered: the message is printed only when send_email is registered", () => {
    const printed: string[] = [];
    const check = (registry: TaskHandlerRegistry) => {
      if (registry.isRegistered("send_email")) printed.push("Email handler is registered");
    };
    const registry = new TaskHandlerRegistry();
    check(registry);
    assert.deepEqual(printed, []);
    registry.registerHandler("send_email", () => {});
    check(registry);
    assert.deepEqual(printed, ["Email handler is registered"]);
  });

  test("get_registered_types: the registered types come back as a set that can be joined for printing", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("send_email", () => {});
    registry.registerHandler("generate_report", () => {});

    const types = registry.getRegisteredTypes();
    const line = `Registered: ${[...types].join(", ")}`;

    assert.ok(types instanceof Set);
    assert.deepEqual(types, new Set(["send_email", "generate_report"]));
    assert.deepEqual(line.slice("Registered: ".length).split(", ").sort(), ["generate_report", "send_email"]);
  });

  test("unregister_handler: True when the handler was removed, False when it did not exist", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("send_email", () => {});
    assert.equal(registry.unregisterHandler("send_email"), true);
    assert.equal(registry.isRegistered("send_email"), false);
    assert.equal(registry.unregisterHandler("send_email"), false);
  });

  test("get_handler_info: the info holds task_type, handler, description and version, or nothing when unregistered", () => {
    const registry = new TaskHandlerRegistry();
    const handler: TaskHandler = () => {};
    registry.registerHandler("send_email", handler, { description: "Sends email", version: "1.2.0" });
    const info = registry.getHandlerInfo("send_email");
    assert.equal(info?.taskType, "send_email");
    assert.equal(info?.handler, handler);
    assert.equal(info?.description, "Sends email");
    assert.equal(info?.version, "1.2.0");
    assert.equal(registry.getHandlerInfo("generate_report"), undefined);
  });

  test("validate_task: a task of a registered type passes, any other raises TaskHandlerNotRegisteredError", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("send_email", () => {});
      const queue = new Queue(db);
      const known = await queue.enqueue("send_email", {});
      const unknown = await queue.enqueue("wipe_disk", {});
      registry.validateTask(known);
      assert.throws(() => registry.validateTask(unknown), {
        name: "TaskHandlerNotRegisteredError",
        message: "No handler registered for task type 'wipe_disk'. Registered types: ['send_email']",
      });
    });
  });

  test("clear: every registered handler is removed", () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("send_email", () => {});
    registry.registerHandler("generate_report", () => {});
    registry.clear();
    assert.deepEqual(registry.getRegisteredTypes(), new Set());
    assert.equal(registry.isRegistered("send_email"), false);
  });

  test("get_global_registry returns the singleton; reset_global_registry creates a new empty instance", () => {
    resetGlobalRegistry();
    try {
      const registry = getGlobalRegistry();
      assert.equal(getGlobalRegistry(), registry);
      registry.registerHandler("send_email", () => {});
      resetGlobalRegistry();
      assert.notEqual(getGlobalRegistry(), registry);
      assert.equal(getGlobalRegistry().getRegisteredTypes().size, 0);
    } finally {
      resetGlobalRegistry();
    }
  });
});

describe("Integration with WorkerEngine", () => {
  test("Legacy Behavior: a worker without a registry runs the handler passed to claimAndProcess", async () => {
    await withDb(async (db) => {
      const printed: string[] = [];
      const myHandler: TaskHandler = (task) => void printed.push(`Processing ${task.type}`);
      const { id } = await new Queue(db).enqueue("anything", {});

      // Pass handler explicitly
      const worker = new WorkerEngine({ db, workerId: "worker-01" });
      assert.equal(await worker.claimAndProcess(myHandler), true);

      assert.deepEqual(printed, ["Processing anything"]);
      assert.equal((await reload(db, id)).status, "completed");
    });
  });

  test("Legacy Behavior: a worker with neither a registry nor a handler refuses to claim, leaving the task queued", async () => {
    await withDb(async (db) => {
      const { id } = await new Queue(db).enqueue("anything", {});
      const worker = new WorkerEngine({ db, workerId: "worker-01" });
      const error = await rejectionOf(worker.claimAndProcess());
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /no handlerRegistry and no taskHandler/);
      const task = await reload(db, id);
      assert.equal(task.status, "queued");
      assert.equal(task.attempts, 0);
    });
  });

  test("New Behavior: claimAndProcess with no handler routes each task to the handler of its type", async () => {
    await withDb(async (db) => {
      const emails: number[] = [];
      const reports: number[] = [];

      // Register handlers
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("email", (task) => void emails.push(task.id));
      registry.registerHandler("report", (task) => void reports.push(task.id));

      const queue = new Queue(db);
      const email = await queue.enqueue("email", {});
      const report = await queue.enqueue("report", {});

      // Worker automatically routes based on task type
      const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });

      // No need to specify handler - registry handles it
      assert.equal(await worker.claimAndProcess(), true);
      assert.equal(await worker.claimAndProcess(), true);
      assert.equal(await worker.claimAndProcess(), false, "nothing is left to claim");

      assert.deepEqual(emails, [email.id]);
      assert.deepEqual(reports, [report.id]);
    });
  });

  test("Hybrid Approach: a handler passed to one claimAndProcess call wins over the registry for that call only", async () => {
    await withDb(async (db) => {
      const calls: string[] = [];
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("email", (task) => void calls.push(`registry:${task.id}`));
      const specialHandler: TaskHandler = (task) => void calls.push(`special:${task.id}`);

      const queue = new Queue(db);
      const first = await queue.enqueue("email", {});
      const second = await queue.enqueue("email", {});
      const third = await queue.enqueue("email", {});

      const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });

      // Use registry for most tasks
      await worker.claimAndProcess();
      // Override for specific cases
      await worker.claimAndProcess(specialHandler);
      // And back to the registry
      await worker.claimAndProcess();

      assert.deepEqual(calls, [`registry:${first.id}`, `special:${second.id}`, `registry:${third.id}`]);
      for (const { id } of [first, second, third]) assert.equal((await reload(db, id)).status, "completed");
    });
  });

  test("Hybrid Approach: a handler passed explicitly also runs a type the registry does not know", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("email", () => {});
      const seen: string[] = [];
      const { id } = await new Queue(db).enqueue("one_off", {});
      const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });
      await worker.claimAndProcess((task) => void seen.push(task.type));
      assert.deepEqual(seen, ["one_off"]);
      assert.equal((await reload(db, id)).status, "completed");
    });
  });
});

describe("Error Handling", () => {
  test("Task Without Registered Handler: the task fails at once, after one attempt, with the exact message", async () => {
    await withDb(async (db) => {
      let handlersRun = 0;
      const registry = new TaskHandlerRegistry();
      for (const type of ["email", "report", "backup"]) {
        registry.registerHandler(type, () => void handlersRun++);
      }

      // A queue without a registry accepts any type, so the task reaches the worker.
      const { id } = await new Queue(db).enqueue("unknown_task", {}, { maxAttempts: 5 });
      const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });
      const summary = await worker.runLoop({ untilEmpty: true });

      assert.deepEqual(summary, {
        claimed: 1,
        completed: 0,
        retried: 0,
        snoozed: 0,
        failed: 1,
        cancelled: 0,
        leaseLost: 0,
        released: 0,
        waiting: { count: 0, nextRunAfter: null },
      });
      const task = await reload(db, id);
      assert.equal(task.status, "failed");
      assert.equal(task.attempts, 1, "no retry: the single attempt is the only one");
      assert.equal(
        task.errorMessage,
        "No handler registered for task type 'unknown_task'. Registered types: ['backup', 'email', 'report']",
      );
      assert.notEqual(task.finishedAt, null);
      assert.equal(handlersRun, 0);
    });
  });

  test("Task Without Registered Handler: a queue bound to the registry refuses the unknown type at enqueue", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      for (const type of ["email", "report", "backup"]) registry.registerHandler(type, () => {});
      const queue = new Queue(db, { registry });
      const error = await rejectionOf(queue.enqueue("unknown_task", {}));
      assert.ok(error instanceof TaskHandlerNotRegisteredError);
      assert.equal(
        error.message,
        "No handler registered for task type 'unknown_task'. Registered types: ['backup', 'email', 'report']",
      );
      assert.deepEqual(await queue.list(), []);
    });
  });

  test("Handler Registration Errors: a duplicate raises, and allow_override replaces the handler", () => {
    const registry = new TaskHandlerRegistry();
    const handler1: TaskHandler = () => "handler1";
    const handler2: TaskHandler = () => "handler2";
    let caught: unknown;

    // Duplicate registration without override
    try {
      registry.registerHandler("email", handler1);
      registry.registerHandler("email", handler2); // Raises error
    } catch (error) {
      if (!(error instanceof TaskHandlerAlreadyRegisteredError)) throw error;
      caught = error;
      // Use allowOverride to replace
      registry.registerHandler("email", handler2, { allowOverride: true });
    }

    assert.ok(caught instanceof TaskHandlerAlreadyRegisteredError);
    assert.equal(registry.getHandler("email"), handler2);
  });

  test("Handler Registration Errors: an empty type and a handler that is not callable raise TypeErrors", () => {
    const registry = new TaskHandlerRegistry();
    const handler: TaskHandler = () => {};
    assert.throws(() => registry.registerHandler("", handler), {
      name: "TypeError",
      message: /cannot be empty/,
    });
    assert.throws(() => registry.registerHandler("task", "not_callable" as unknown as TaskHandler), {
      name: "TypeError",
      message: /must be a function/,
    });
    assert.equal(registry.getRegisteredTypes().size, 0);
  });
});

describe("Best Practices", () => {
  test("Register All Handlers at Startup: setup_handlers fills the global registry that every worker then uses", async () => {
    resetGlobalRegistry();
    try {
      await withDb(async (db) => {
        const ran: string[] = [];
        const emailHandler: TaskHandler = () => void ran.push("email");
        const reportHandler: TaskHandler = () => void ran.push("report");
        const backupHandler: TaskHandler = () => void ran.push("backup");

        /** Initialize all task handlers at application startup. */
        function setupHandlers(): TaskHandlerRegistry {
          const registry = getGlobalRegistry();
          registry.registerHandler("send_email", emailHandler);
          registry.registerHandler("generate_report", reportHandler);
          registry.registerHandler("backup_data", backupHandler);
          return registry;
        }

        // In main.ts or startup code
        const registry = setupHandlers();

        assert.equal(registry, getGlobalRegistry());
        assert.deepEqual(
          registry.getRegisteredTypes(),
          new Set(["send_email", "generate_report", "backup_data"]),
        );
        const queue = new Queue(db, { registry });
        await queue.enqueue("send_email", {});
        await queue.enqueue("generate_report", {});
        await queue.enqueue("backup_data", {});
        const summary = await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry })
          .runLoop({ untilEmpty: true });
        assert.equal(summary.completed, 3);
        assert.deepEqual(ran, ["email", "report", "backup"]);
        assert.throws(() => setupHandlers(), TaskHandlerAlreadyRegisteredError, "startup must run only once");
      });
    } finally {
      resetGlobalRegistry();
    }
  });

  test("Use Descriptive Handler Names: the registry keeps the named function itself", () => {
    // Good - clear what it does
    function sendWelcomeEmailHandler(_task: Task) {}
    // Better - follows naming convention
    function handleSendWelcomeEmail(_task: Task) {}

    const registry = new TaskHandlerRegistry();
    registry.registerHandler("send_welcome_email", handleSendWelcomeEmail);
    registry.registerHandler("send_welcome_email_legacy", sendWelcomeEmailHandler);
    assert.equal(registry.getHandler("send_welcome_email").name, "handleSendWelcomeEmail");
    assert.equal(registry.getHandler("send_welcome_email_legacy").name, "sendWelcomeEmailHandler");
  });

  test("Version Your Handlers: process_payment v2 registered with allow_override replaces v1 for the worker", async () => {
    await withDb(async (db) => {
      const ran: string[] = [];
      const processPaymentV1: TaskHandler = () => void ran.push("v1");
      const processPaymentV2: TaskHandler = () => void ran.push("v2");
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("process_payment", processPaymentV1);

      registry.registerHandler("process_payment", processPaymentV2, {
        version: "2.0.0",
        allowOverride: true, // Override v1
      });

      assert.equal(registry.getHandlerInfo("process_payment")?.version, "2.0.0");
      await new Queue(db).enqueue("process_payment", { amount: 10 });
      await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry }).claimAndProcess();
      assert.deepEqual(ran, ["v2"]);
    });
  });

  test("Version Your Handlers: without allow_override the v2 registration is refused and v1 stays", () => {
    const registry = new TaskHandlerRegistry();
    const v1: TaskHandler = () => {};
    registry.registerHandler("process_payment", v1);
    assert.throws(
      () => registry.registerHandler("process_payment", () => {}, { version: "2.0.0" }),
      TaskHandlerAlreadyRegisteredError,
    );
    assert.equal(registry.getHandler("process_payment"), v1);
    assert.equal(registry.getHandlerInfo("process_payment")?.version, "1.0.0");
  });

  test("Document Handler Requirements: a schema states the payment payload's required and optional fields", async () => {
    await withDb(async (db) => {
      const charged: unknown[] = [];
      /**
       * Process payment transaction.
       *
       * Required payload fields: amount (number), currency (ISO code), customer_id (string).
       * Optional payload fields: description (string).
       */
      const paymentHandler = defineHandler({
        type: "process_payment",
        schema: v.object({
          amount: v.number(),
          currency: v.pipe(v.string(), v.length(3)),
          customer_id: v.string(),
          description: v.optional(v.string()),
        }),
        handle: (task) => void charged.push(task.payload),
      });
      const registry = new TaskHandlerRegistry();
      registry.registerHandler(paymentHandler);
      const queue = new Queue(db, { registry });

      await queue.enqueue("process_payment", { amount: 9.5, currency: "EUR", customer_id: "c-1" });
      const error = await rejectionOf(queue.enqueue("process_payment", { amount: 9.5, currency: "EURO" }));
      assert.ok(error instanceof PayloadValidationError);
      assert.deepEqual(error.issues.map((issue) => issue.path).sort(), ["currency", "customer_id"]);

      await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry }).runLoop({
        untilEmpty: true,
      });
      assert.deepEqual(charged, [{ amount: 9.5, currency: "EUR", customer_id: "c-1" }]);
    });
  });

  test("Use Type Hints: a typed handler reads amount from its payload, defaulting to 0", async () => {
    await withDb(async (db) => {
      const amounts: number[] = [];

      /** Handler with explicit type hints. */
      const typedHandler: TaskHandler<{ amount?: number }> = (task: Task<{ amount?: number }>): void => {
        const payload: { amount?: number } = task.payload;
        const amount: number = payload.amount ?? 0.0;
        amounts.push(amount);
      };

      const registry = new TaskHandlerRegistry();
      registry.registerHandler("typed", typedHandler);
      const queue = new Queue(db);
      await queue.enqueue("typed", { amount: 12.5 });
      await queue.enqueue("typed", {});
      await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry }).runLoop({
        untilEmpty: true,
      });
      assert.deepEqual(amounts, [12.5, 0]);
    });
  });
});

describe("Testing", () => {
  test("Unit Tests: test_handler_registration", () => {
    const registry = new TaskHandlerRegistry();

    function myHandler(_task: Task) {}

    registry.registerHandler("test_task", myHandler);

    assert.ok(registry.isRegistered("test_task"));
    assert.equal(registry.getHandler("test_task"), myHandler);
  });

  test("Integration Tests: test_worker_with_registry on an in-memory database processes the inserted task", async () => {
    const db = new QueueDatabase(":memory:");
    try {
      await db.initializeSchema();

      const registry = new TaskHandlerRegistry();
      const processedTasks: number[] = [];

      const testHandler: TaskHandler = (task) => void processedTasks.push(task.id);

      registry.registerHandler("test_task", testHandler);

      // Enqueue task
      const inserted = await db.transaction((tx) =>
        tx.execute("INSERT INTO task_queue (type, payload) VALUES (?, ?) RETURNING id", ["test_task", "{}"])
      );

      // Process with worker
      const worker = new WorkerEngine({ db, workerId: "test-worker", handlerRegistry: registry });

      assert.equal(await worker.claimAndProcess(), true);

      assert.equal(processedTasks.length, 1);
      assert.equal(processedTasks[0], Number(inserted.rows[0]?.id));
      const task = await reload(db, processedTasks[0]);
      assert.equal(task.status, "completed");
      assert.deepEqual(task.payload, {});
    } finally {
      await db.close();
    }
  });

  describe("Reset Registry Between Tests", () => {
    let registry: TaskHandlerRegistry;

    beforeEach(() => {
      // Reset global registry before each test.
      resetGlobalRegistry();
      registry = getGlobalRegistry();
    });

    test("the first test gets an empty global registry and registers shared_task", () => {
      assert.equal(registry, getGlobalRegistry());
      assert.equal(registry.getRegisteredTypes().size, 0);
      registry.registerHandler("shared_task", () => {});
      assert.ok(getGlobalRegistry().isRegistered("shared_task"));
    });

    test("the next test gets an empty global registry again and can register shared_task without override", () => {
      assert.equal(registry, getGlobalRegistry());
      assert.equal(registry.getRegisteredTypes().size, 0);
      registry.registerHandler("shared_task", () => {});
      assert.ok(getGlobalRegistry().isRegistered("shared_task"));
    });
  });
});

describe("Migration Guide", () => {
  const types = ["email", "report", "email"];

  test("From Unregistered Handlers: before, one legacy handler switches on task.type in runLoop", async () => {
    await withDb(async (db) => {
      const done: string[] = [];
      const sendEmail = (task: Task) => void done.push(`email:${task.id}`);
      const generateReport = (task: Task) => void done.push(`report:${task.id}`);

      const processAllTasks: TaskHandler = (task) => {
        if (task.type === "email") sendEmail(task);
        else if (task.type === "report") generateReport(task);
        // etc...
      };

      const queue = new Queue(db);
      const ids = [];
      for (const type of types) ids.push((await queue.enqueue(type, {})).id);
      const worker = new WorkerEngine({ db, workerId: "worker-01" });
      const summary = await worker.runLoop({ taskHandler: processAllTasks, untilEmpty: true });

      assert.equal(summary.completed, 3);
      assert.deepEqual(done, [`email:${ids[0]}`, `report:${ids[1]}`, `email:${ids[2]}`]);
    });
  });

  test("From Unregistered Handlers: after, the registry routes the same tasks in runLoop without a handler", async () => {
    await withDb(async (db) => {
      const done: string[] = [];
      const sendEmailHandler: TaskHandler = (task) => void done.push(`email:${task.id}`);
      const generateReportHandler: TaskHandler = (task) => void done.push(`report:${task.id}`);

      const registry = new TaskHandlerRegistry();
      registry.registerHandler("email", sendEmailHandler);
      registry.registerHandler("report", generateReportHandler);

      const queue = new Queue(db);
      const ids = [];
      for (const type of types) ids.push((await queue.enqueue(type, {})).id);
      const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });
      const summary = await worker.runLoop({ untilEmpty: true }); // No handler needed - registry routes automatically

      assert.equal(summary.completed, 3);
      assert.deepEqual(done, [`email:${ids[0]}`, `report:${ids[1]}`, `email:${ids[2]}`]);
    });
  });

  test("From Unregistered Handlers: a type the legacy switch silently completed now fails, naming the registered types", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const legacy = await queue.enqueue("backup", {});
      await new WorkerEngine({ db, workerId: "legacy" }).claimAndProcess((task) => {
        if (task.type === "email") throw new Error("not reached");
      });
      assert.equal((await reload(db, legacy.id)).status, "completed");

      const registry = new TaskHandlerRegistry();
      registry.registerHandler("email", () => {});
      registry.registerHandler("report", () => {});
      const migrated = await queue.enqueue("backup", {});
      await new WorkerEngine({ db, workerId: "migrated", handlerRegistry: registry }).claimAndProcess();
      const task = await reload(db, migrated.id);
      assert.equal(task.status, "failed");
      assert.equal(
        task.errorMessage,
        "No handler registered for task type 'backup'. Registered types: ['email', 'report']",
      );
    });
  });
});

describe("Security Considerations", () => {
  test("Validate Task Payloads: secure_handler fails a task missing user_id and sanitizes the one it processes", async () => {
    await withDb(async (db) => {
      const processed: string[] = [];
      const processUserData = (userId: string) => void processed.push(userId);

      const secureHandler: TaskHandler<Record<string, unknown>> = (task) => {
        const payload = task.payload;

        // Validate required fields
        if (!("user_id" in payload)) throw new NonRetryableError("Missing user_id");

        // Sanitize inputs
        const userId = String(payload.user_id).trim();

        // Process safely
        processUserData(userId);
      };

      const registry = new TaskHandlerRegistry();
      registry.registerHandler("user_data", secureHandler);
      const queue = new Queue(db);
      const bad = await queue.enqueue("user_data", { name: "Ada" });
      const good = await queue.enqueue("user_data", { user_id: "  u-42 \n" });
      await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry }).runLoop({
        untilEmpty: true,
      });

      assert.deepEqual(processed, ["u-42"]);
      const failed = await reload(db, bad.id);
      assert.equal(failed.status, "failed");
      assert.equal(failed.attempts, 1);
      assert.equal(failed.errorMessage, "Missing user_id");
      assert.equal((await reload(db, good.id)).status, "completed");
    });
  });

  test("Prevent Handler Injection: a handler name in the payload cannot select another registered handler", async () => {
    await withDb(async (db) => {
      const ran: string[] = [];
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("resize_image", (task) => void ran.push(`resize_image:${task.id}`));
      registry.registerHandler("delete_account", (task) => void ran.push(`delete_account:${task.id}`));

      // ✗ The payload names a handler: user-controlled, and ignored by routing.
      const task = await new Queue(db).enqueue("resize_image", { handler: "delete_account" });
      // ✓ The registry routes by type only.
      await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry }).claimAndProcess();

      assert.deepEqual(ran, [`resize_image:${task.id}`]);
    });
  });

  test("Prevent Handler Injection: task types naming code (eval, constructor, __proto__) reach no handler", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      let ran = 0;
      registry.registerHandler("resize_image", () => void ran++);
      const queue = new Queue(db);
      const hostile = ["eval", "constructor", "__proto__", "toString", "globalThis.process.exit"];
      const ids = [];
      for (const type of hostile) ids.push((await queue.enqueue(type, { handler: "eval" })).id);

      const worker = new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry });
      const summary = await worker.runLoop({ untilEmpty: true });

      assert.equal(ran, 0);
      assert.equal(summary.failed, hostile.length);
      for (const [index, id] of ids.entries()) {
        const task = await reload(db, id);
        assert.equal(task.status, "failed");
        assert.equal(
          task.errorMessage,
          `No handler registered for task type '${hostile[index]}'. Registered types: ['resize_image']`,
        );
      }
      for (const type of hostile) {
        assert.throws(() => registry.getHandler(type), TaskHandlerNotRegisteredError);
      }
    });
  });

  test("Limit Handler Permissions: restricted_handler allows read and validate and refuses any other operation", async () => {
    await withDb(async (db) => {
      class PermissionError extends Error {
        override name = "PermissionError";
      }
      const performed: string[] = [];

      /** Handler with limited permissions. */
      const restrictedHandler: TaskHandler<{ operation?: string }> = (task) => {
        // Only specific operations allowed
        const allowedOperations = ["read", "validate"];

        const operation = task.payload.operation;

        if (!operation || !allowedOperations.includes(operation)) {
          throw new PermissionError(`Operation ${operation} not allowed`);
        }
        performed.push(operation);
      };

      const registry = new TaskHandlerRegistry();
      registry.registerHandler("restricted", restrictedHandler);
      const queue = new Queue(db);
      const read = await queue.enqueue("restricted", { operation: "read" });
      const del = await queue.enqueue("restricted", { operation: "delete" }, { maxAttempts: 1 });
      await new WorkerEngine({ db, workerId: "worker-01", handlerRegistry: registry }).runLoop({
        untilEmpty: true,
      });

      assert.deepEqual(performed, ["read"]);
      assert.equal((await reload(db, read.id)).status, "completed");
      const refused = await reload(db, del.id);
      assert.equal(refused.status, "failed");
      assert.match(refused.errorMessage ?? "", /PermissionError: Operation delete not allowed/);
    });
  });
});

/**
 * The original design's demo, against a real database: basic registration, worker integration, the
 * global registry, a handler override, and the error for an unregistered type. Its workers claim only the
 * demo's own task types, so running it against a database in use leaves other tasks alone.
 *
 * @module
 */
import {
  getGlobalRegistry,
  Queue,
  type QueueDatabase,
  type Task,
  TaskHandlerAlreadyRegisteredError,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../../mod.ts";

const TYPES = ["demo_send_email", "demo_generate_report", "demo_backup_data", "demo_unregistered"];

/** Runs the demo on `db`, printing each step with `print`. */
export async function runDemo(db: QueueDatabase, print: (line: string) => void): Promise<void> {
  await db.initializeSchema();
  const heading = (text: string) => print(`\n== ${text}`);
  const drain = async (registry: TaskHandlerRegistry, workerId: string) => {
    const worker = new WorkerEngine({ db, workerId, handlerRegistry: registry, types: TYPES });
    return await worker.runLoop({ untilEmpty: true });
  };

  heading("1. Basic registration");
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("demo_send_email", (task: Task<{ to: string; subject: string }>) => {
    print(`   [v1] email to ${task.payload.to}: "${task.payload.subject}" (task ${task.id})`);
  }, { description: "Sends email notifications", version: "1.0.0" });
  const info = registry.getHandlerInfo("demo_send_email")!;
  print(`   registered '${info.taskType}' v${info.version}: ${info.description}`);
  print(`   isRegistered('demo_send_email') = ${registry.isRegistered("demo_send_email")}`);

  heading("2. Worker integration");
  const queue = new Queue(db, { registry });
  for (const to of ["ada@example.com", "alan@example.com"]) {
    const task = await queue.enqueue("demo_send_email", { to, subject: "Welcome" });
    print(`   enqueued task ${task.id} (${task.type})`);
  }
  const first = await drain(registry, "demo-worker-1");
  print(`   worker demo-worker-1 completed ${first.completed} task(s)`);

  heading("3. Global registry");
  const global = getGlobalRegistry();
  print(`   getGlobalRegistry() returns one instance: ${global === getGlobalRegistry()}`);
  global.registerHandler("demo_generate_report", (task) => print(`   report generated (task ${task.id})`), {
    allowOverride: true,
  });
  global.registerHandler("demo_backup_data", (task) => print(`   backup made (task ${task.id})`), {
    allowOverride: true,
  });
  print(`   global registry types: ${[...global.getRegisteredTypes()].sort().join(", ")}`);
  const globalQueue = new Queue(db, { registry: global });
  await globalQueue.enqueue("demo_generate_report", {});
  await globalQueue.enqueue("demo_backup_data", {});
  const second = await drain(global, "demo-worker-2");
  print(`   worker demo-worker-2 completed ${second.completed} task(s)`);

  heading("4. Handler override");
  try {
    registry.registerHandler("demo_send_email", () => {});
  } catch (error) {
    if (!(error instanceof TaskHandlerAlreadyRegisteredError)) throw error;
    print(`   without allowOverride: ${error.name}: ${error.message}`);
  }
  registry.registerHandler("demo_send_email", (task: Task<{ to: string; subject: string }>) => {
    print(`   [v2] email to ${task.payload.to}: "${task.payload.subject}" (task ${task.id})`);
  }, { description: "Sends email notifications, now with templates", version: "2.0.0", allowOverride: true });
  print(`   with allowOverride: now v${registry.getHandlerInfo("demo_send_email")!.version}`);
  await queue.enqueue("demo_send_email", { to: "grace@example.com", subject: "Release notes" });
  await drain(registry, "demo-worker-1");

  heading("5. Error for an unregistered type");
  const unbound = new Queue(db);
  const orphan = await unbound.enqueue("demo_unregistered", { anything: true });
  print(`   enqueued task ${orphan.id} of type '${orphan.type}' through a queue without a registry`);
  await drain(registry, "demo-worker-1");
  const failed = (await unbound.get(orphan.id))!;
  print(`   task ${failed.id} is '${failed.status}' after ${failed.attempts} attempt (no retry):`);
  print(`   ${failed.errorMessage}`);
  try {
    await queue.enqueue("demo_unregistered", {});
  } catch (error) {
    print(`   a queue bound to the registry refuses it before writing: ${(error as Error).message}`);
  }

  const stats = await unbound.stats();
  heading("Demo task counts in this database");
  for (const type of TYPES) {
    const counts = stats.byType[type];
    if (counts) print(`   ${type}: ${counts.completed} completed, ${counts.failed} failed`);
  }
}

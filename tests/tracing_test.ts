/**
 * OpenTelemetry spans per attempt. With `@opentelemetry/api` and a tracer provider registered (an
 * in-memory one written here against the API's interfaces, no SDK), a real worker makes one span per
 * attempt, with the task's id, type, queue and attempt, an error status with the message when the attempt
 * failed, and ended when it timed out or was cancelled too. Without the package, the worker runs as before:
 * in-process, with an import that fails, and in a process where the package cannot be found.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { promisify } from "node:util";
import {
  type Attributes,
  type AttributeValue,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { NonRetryableError, Queue, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import * as otel from "@opentelemetry/api";
import { attemptTracer, loadAttemptTracer, type OtelApi } from "../src/worker/tracing.ts";
import { deferred, REPO, untilAborted, withDb } from "./_helpers.ts";

/** A span as the in-memory exporter keeps it once ended. */
interface Finished {
  name: string;
  attributes: Attributes;
  status: SpanStatus;
  kind: number | undefined;
}

/** Spans kept in memory: the exporter of {@link MemoryTracerProvider}. */
class MemoryExporter {
  readonly finished: Finished[] = [];
  started = 0;
}

let nextId = 1;

class MemorySpan implements Span {
  readonly #context: SpanContext;
  readonly #attributes: Attributes;
  #status: SpanStatus = { code: SpanStatusCode.UNSET };
  #name: string;
  #ended = false;

  constructor(
    name: string,
    readonly options: SpanOptions,
    readonly exporter: MemoryExporter,
  ) {
    this.#name = name;
    this.#attributes = { ...options.attributes };
    const id = (nextId++).toString(16).padStart(16, "0");
    this.#context = { traceId: id.padStart(32, "0"), spanId: id, traceFlags: 1 };
    exporter.started++;
  }
  spanContext(): SpanContext {
    return this.#context;
  }
  setAttribute(key: string, value: AttributeValue): this {
    this.#attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.#attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.#status = status;
    return this;
  }
  updateName(name: string): this {
    this.#name = name;
    return this;
  }
  end(): void {
    assert.ok(!this.#ended, `span ${this.#name} ended once`);
    this.#ended = true;
    this.exporter.finished.push({
      name: this.#name,
      attributes: this.#attributes,
      status: this.#status,
      kind: this.options.kind,
    });
  }
  isRecording(): boolean {
    return !this.#ended;
  }
  recordException(): void {}
}

class MemoryTracerProvider implements TracerProvider {
  readonly exporter = new MemoryExporter();
  readonly scopes: string[] = [];
  getTracer(name: string): Tracer {
    this.scopes.push(name);
    const exporter = this.exporter;
    const tracer: Tracer = {
      startSpan: (spanName: string, options: SpanOptions = {}) => new MemorySpan(spanName, options, exporter),
      startActiveSpan: (() => {
        throw new Error("not used by PrismQ");
      }) as Tracer["startActiveSpan"],
    };
    return tracer;
  }
}

test("with a tracer provider registered, a worker makes one span per attempt, ended however the attempt ends", async () => {
  const provider = new MemoryTracerProvider();
  assert.ok(trace.setGlobalTracerProvider(provider), "the provider was registered");
  try {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      const cancelMe = deferred();
      registry.registerHandler("ok", () => "done");
      registry.registerHandler("boom", () => {
        throw new NonRetryableError("the mailbox is gone");
      });
      registry.registerHandler("slow", (_task, ctx) => untilAborted(ctx.signal), {
        description: "times out",
      });
      registry.registerHandler("held", async (_task, ctx) => {
        cancelMe.resolve();
        await untilAborted(ctx.signal);
      });
      const queue = new Queue(db, { registry });
      const ok = await queue.enqueue("ok", {}, { queue: "mail" });
      const boom = await queue.enqueue("boom", {});
      const slow = await queue.enqueue("slow", {}, { timeoutMs: 100, maxAttempts: 1 });
      const held = await queue.enqueue("held", {});
      const worker = new WorkerEngine({
        db,
        workerId: "w1",
        handlerRegistry: registry,
        leaseMs: 300,
        concurrency: 4,
      });
      const loop = worker.runLoop({ untilEmpty: true });
      await cancelMe.promise;
      await queue.cancel(held.id);
      const summary = await loop;
      assert.equal(summary.completed, 1);
      assert.equal(summary.failed, 2);
      assert.equal(summary.cancelled, 1);

      const spans = provider.exporter.finished;
      assert.equal(provider.exporter.started, 4, "one span per attempt");
      const byId = new Map(spans.map((s) => [s.attributes["prismq.task.id"], s]));
      assert.deepEqual(byId.get(ok.id), {
        name: "process ok",
        kind: 4, // SpanKind.CONSUMER
        attributes: {
          "prismq.task.id": ok.id,
          "prismq.task.type": "ok",
          "prismq.queue": "mail",
          "prismq.task.attempt": 1,
          "prismq.worker.id": "w1",
          "prismq.task.outcome": "completed",
        },
        status: { code: SpanStatusCode.UNSET },
      });
      assert.deepEqual(byId.get(boom.id)?.status, {
        code: SpanStatusCode.ERROR,
        message: "the mailbox is gone",
      });
      assert.equal(byId.get(boom.id)?.attributes["prismq.task.outcome"], "failed");
      const timedOut = byId.get(slow.id)!;
      assert.equal(timedOut.status.code, SpanStatusCode.ERROR);
      assert.match(timedOut.status.message ?? "", /timed out|100 ms/i);
      const cancelled = byId.get(held.id)!;
      assert.equal(cancelled.attributes["prismq.task.outcome"], "lost");
      assert.deepEqual(cancelled.status, {
        code: SpanStatusCode.ERROR,
        message: `Task ${held.id} was cancelled.`,
      });
      assert.ok(provider.scopes.every((scope) => scope === "prismq"), "the instrumentation scope is prismq");
    });
  } finally {
    trace.disable();
  }
});

test("without the package, no tracer: an import that fails, or a module that is not the API", async () => {
  assert.equal(await loadAttemptTracer(() => Promise.reject(new TypeError("Module not found"))), null);
  assert.equal(await loadAttemptTracer(() => Promise.resolve({})), null);
  assert.notEqual(await loadAttemptTracer(), null, "installed here as a dev dependency");
});

test("a worker in a process where @opentelemetry/api cannot be found runs its tasks as before", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prismq-otel-absent-"));
  try {
    const config = JSON.parse(readFileSync(join(REPO, "deno.json"), "utf8")) as {
      imports: Record<string, string>;
    };
    const map = join(dir, "import_map.json");
    writeFileSync(
      map,
      JSON.stringify({ imports: { ...config.imports, "@opentelemetry/api": "./missing/api.js" } }),
    );
    const fixture = join(REPO, "tests/fixtures/otel_absent_worker.ts");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["run", "-A", `--import-map=${map}`, fixture, join(dir, "queue.db")],
      { cwd: REPO, timeout: 60_000 },
    );
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.equal(result.present, false, "the package cannot be imported in that process");
    assert.equal(result.completed, 1);
    assert.equal(result.failed, 1);
    assert.equal(result.stats.completed, 1);
    assert.equal(result.stats.failed, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("until an application registers a tracer provider, no span is made; once it does, spans are", () => {
  const tracer = attemptTracer(otel as unknown as OtelApi);
  const task = { id: 1, type: "t", queue: "default", attempts: 1 } as Parameters<typeof tracer.start>[0];
  trace.disable();
  assert.equal(
    tracer.start(task, "w"),
    null,
    "no provider: the API's proxy has no tracer, and no span is made",
  );
  const provider = new MemoryTracerProvider();
  assert.ok(trace.setGlobalTracerProvider(provider));
  try {
    const span = tracer.start(task, "w");
    assert.ok(span !== null, "a provider registered after the tracer was made is used");
    span.end({ id: 1, leaseToken: "x", status: "completed" }, null);
    assert.deepEqual(provider.exporter.finished.map((finished) => finished.name), ["process t"]);
  } finally {
    trace.disable();
  }
});

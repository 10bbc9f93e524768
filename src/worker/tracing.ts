/**
 * OpenTelemetry spans, one per attempt, when the application uses `@opentelemetry/api` (an optional peer
 * dependency). PrismQ imports the package lazily, once per process, and carries on without spans when it
 * is not installed. With it installed but no tracer provider registered, the API's own no-op tracer makes
 * each span cost next to nothing.
 *
 * The import is a literal one, as every dynamic import in `src/` is (`tests/static_linking_test.ts`), of an
 * optional peer dependency: bundlers link the package in when it is installed, as a static import, and only
 * its evaluation waits. The compiled `prismq` binary carries it but registers no tracer provider, so its
 * spans are the API's no-ops. The package keeps its registry on `globalThis`, so the copy loaded here sees
 * the provider the application registered with its own.
 *
 * The few members used are typed here rather than imported, so that PrismQ's own types never name the
 * package and compile without it.
 *
 * @module
 */
import type { Finish } from "../store/store.ts";
import type { Task } from "../task.ts";

type Attributes = Record<string, string | number | boolean>;

interface OtelSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

interface OtelTracer {
  startSpan(name: string, options?: { kind?: number; attributes?: Attributes }): OtelSpan;
}

/** What PrismQ uses of `@opentelemetry/api`. */
export interface OtelApi {
  trace: {
    getTracer(name: string, version?: string): OtelTracer;
    /** The global provider: the API's proxy, whose tracer is undefined until an application registers one. */
    getTracerProvider?(): { getDelegateTracer?(name: string): OtelTracer | undefined };
  };
  SpanStatusCode: { ERROR: number };
  SpanKind: { CONSUMER: number };
}

/** One attempt's span: ended once, with its outcome. */
export interface AttemptSpan {
  /** Ends the span: an error status with the message for a failed attempt, or a lost lease. */
  end(finish: Finish, lost: Error | null): void;
}

/** Starts the span of each attempt: none (null) while no application has registered a tracer provider. */
export interface AttemptTracer {
  start(task: Task, workerId: string): AttemptSpan | null;
}

/** Imports `@opentelemetry/api`: rejects when it is not installed. */
export type OtelImport = () => Promise<unknown>;

/** The package, from wherever the importing program resolves it. */
const importOtel: OtelImport = () => import("@opentelemetry/api");

/** The name of the spans' instrumentation scope. */
const SCOPE = "prismq";

let loaded: Promise<AttemptTracer | null> | undefined;

/**
 * The tracer of attempts, or null without `@opentelemetry/api`: imported on the first call, and shared by
 * every later call in the process (`load`, for tests, makes a new one).
 */
export function loadAttemptTracer(load?: OtelImport): Promise<AttemptTracer | null> {
  if (load) return tracerFrom(load);
  return loaded ??= tracerFrom(importOtel);
}

async function tracerFrom(load: OtelImport): Promise<AttemptTracer | null> {
  let api: OtelApi;
  try {
    api = await load() as OtelApi;
  } catch {
    // Not installed (or not loadable here, as in a compiled binary): no spans, and nothing else changes.
    return null;
  }
  if (typeof api?.trace?.getTracer !== "function") return null;
  return attemptTracer(api);
}

/** Spans named `process <type>`, of kind consumer, with the task's id, type, queue and attempt. */
export function attemptTracer(api: OtelApi): AttemptTracer {
  return {
    start(task, workerId) {
      // Looked up per span: the application may register its provider after the worker started. Until it
      // does, the API's proxy has no tracer, and a span would record nothing: none is made (building one
      // cost a worker about a microsecond and 250 bytes a task).
      const provider = api.trace.getTracerProvider?.();
      const tracer = typeof provider?.getDelegateTracer === "function"
        ? provider.getDelegateTracer(SCOPE)
        : api.trace.getTracer(SCOPE);
      if (tracer === undefined) return null;
      const span = tracer.startSpan(`process ${task.type}`, {
        kind: api.SpanKind.CONSUMER,
        attributes: {
          "prismq.task.id": task.id,
          "prismq.task.type": task.type,
          "prismq.queue": task.queue,
          "prismq.task.attempt": task.attempts,
          "prismq.worker.id": workerId,
        },
      });
      return {
        end(finish, lost) {
          try {
            span.setAttribute("prismq.task.outcome", lost ? "lost" : finish.status);
            const message = lost
              ? lost.message
              : finish.status === "failed" || finish.status === "queued"
              ? finish.errorMessage
              : undefined;
            if (message !== undefined) span.setStatus({ code: api.SpanStatusCode.ERROR, message });
          } finally {
            span.end();
          }
        },
      };
    },
  };
}

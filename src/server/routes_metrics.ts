/**
 * The fleet's figures over HTTP: `GET /metrics` in Prometheus's text format for a scraper, and
 * `GET /api/throughput` for the dashboard's chart. Both read the database, so any one server reports the
 * whole fleet (see `src/metrics/`).
 *
 * @module
 */
import { collectMetrics, throughput } from "../metrics/collect.ts";
import { formatPrometheus, PROMETHEUS_CONTENT_TYPE } from "../metrics/prometheus.ts";
import { ApiError } from "./errors.ts";
import type { Route } from "./route.ts";

export const METRICS_ROUTES: Route[] = [
  {
    method: "GET",
    path: "/metrics",
    summary: "Prometheus metrics of the whole fleet",
    description:
      "Counters per type and queue, run and wait time histograms, queue depths and oldest waits, " +
      "live workers, in the Prometheus text exposition format 0.0.4. Needs a read token when tokens are set.",
    access: "read",
    responses: { 200: { description: "The metrics, as text/plain; version=0.0.4" } },
    async handle(c, { db }) {
      const text = formatPrometheus(await collectMetrics(db));
      return c.body(text, 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
    },
  },
  {
    method: "GET",
    path: "/api/throughput",
    summary: "Completed and failed tasks per minute, oldest first",
    access: "read",
    query: [{
      name: "minutes",
      description: "How many minutes back, the current one included (1 to 1440; default 60)",
      schema: { type: "integer", minimum: 1, maximum: 1440 },
    }],
    responses: {
      200: {
        description: "One entry per minute, zeros included",
        schema: {
          type: "array",
          items: {
            type: "object",
            properties: {
              minute: { type: "integer", description: "The minute's start, epoch ms" },
              completed: { type: "integer" },
              failed: { type: "integer" },
            },
            required: ["minute", "completed", "failed"],
          },
        },
      },
    },
    async handle(c, { db }) {
      const given = c.req.query("minutes");
      let minutes: number | undefined = undefined;
      if (given !== undefined) {
        minutes = /^\d{1,4}$/.test(given) ? Number(given) : NaN;
        if (!(minutes >= 1 && minutes <= 1440)) {
          throw new ApiError(
            400,
            "INVALID_ARGUMENT",
            `minutes must be a whole number from 1 to 1440; got ${JSON.stringify(given)}.`,
          );
        }
      }
      return c.json(await throughput(db, { minutes }));
    },
  },
];

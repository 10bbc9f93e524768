/**
 * Listening for HTTP: the one place that knows how each runtime serves a web-standard handler, chosen once
 * per call: `Deno.serve` on Deno, `Bun.serve` on Bun (the compiled binary), `node:http` on Node. Everything
 * above it speaks `Request` and `Response` only.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable } from "node:stream";

/** A server that listens. */
export interface HttpListener {
  /** The port it listens on (the one chosen, when asked for port 0). */
  readonly port: number;
  /** Stops accepting connections, lets the requests under way finish, then resolves. */
  close(): Promise<void>;
}

export type FetchHandler = (request: Request) => Promise<Response>;

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen?: () => void },
    handler: FetchHandler,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}
interface BunServe {
  serve(options: { hostname: string; port: number; fetch: FetchHandler }): {
    port: number;
    stop(closeActiveConnections?: boolean): Promise<void> | void;
  };
}

/**
 * Serves `handler` on `hostname:port`.
 *
 * @throws {Error} when the address cannot be listened on (in use, not this machine's), its message naming it
 */
export async function listenHttp(
  handler: FetchHandler,
  hostname: string,
  port: number,
): Promise<HttpListener> {
  const { Deno, Bun } = globalThis as { Deno?: DenoServe; Bun?: BunServe };
  try {
    if (Deno) {
      const server = Deno.serve({ hostname, port, onListen: () => {} }, handler);
      return { port: server.addr.port, close: () => server.shutdown() };
    }
    if (Bun) {
      const server = Bun.serve({ hostname, port, fetch: handler });
      return { port: server.port, close: async () => await server.stop(false) };
    }
    return await listenNode(handler, hostname, port);
  } catch (error) {
    const reason = (error as { code?: string }).code === "EADDRINUSE" || /in use/i.test(String(error))
      ? "the address is in use"
      : (error as Error).message;
    throw new Error(`Cannot listen on ${hostname}:${port}: ${reason}. Choose another with --listen.`, {
      cause: error,
    });
  }
}

/** Serves `handler` with `node:http`: on Node, and in tests of this adapter on any runtime. */
export function listenNode(handler: FetchHandler, hostname: string, port: number): Promise<HttpListener> {
  let active = 0;
  let closing = false;
  const server = createServer((incoming, outgoing) => {
    active++;
    answer(handler, incoming, outgoing)
      .catch((error) => outgoing.destroy(error as Error))
      .finally(() => {
        active--;
        // Kept-alive connections would hold close() open: once no request is under way, they go.
        if (closing && active === 0) server.closeAllConnections();
      });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      const address = server.address();
      resolve({
        port: typeof address === "object" && address ? address.port : port,
        close: () =>
          new Promise<void>((done) => {
            closing = true;
            server.close(() => done());
            if (active === 0) server.closeAllConnections();
          }),
      });
    });
  });
}

/** One Node request through a web-standard handler. */
async function answer(handler: FetchHandler, incoming: IncomingMessage, outgoing: ServerResponse) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (Array.isArray(value)) value.forEach((v) => headers.append(name, v));
    else if (value !== undefined) headers.set(name, value);
  }
  const method = incoming.method ?? "GET";
  const url = `http://${incoming.headers.host ?? "localhost"}${incoming.url ?? "/"}`;
  const hasBody = method !== "GET" && method !== "HEAD";
  const request = new Request(url, {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(incoming) as ReadableStream<Uint8Array>) : undefined,
    // @ts-ignore: Node's fetch needs it for a streamed body; the DOM types lack it.
    duplex: "half",
  });
  const response = await handler(request);
  outgoing.statusCode = response.status;
  response.headers.forEach((value, name) => outgoing.appendHeader(name, value));
  if (response.body && method !== "HEAD") {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) outgoing.write(chunk);
  }
  outgoing.end();
}

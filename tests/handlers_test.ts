/**
 * The handlers linked into the binary (`handlers/`): their schemas, and what they do when a real worker
 * runs them. Messages written by send_email are parsed back here with a decoder of our own.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import fc from "fast-check";
import {
  backoffDelayMs,
  DEFAULT_RETRY_POLICY,
  type HandlerContext,
  type HandlerDefinition,
  NonRetryableError,
  parsePayload,
  PayloadValidationError,
  Queue,
  QueueDatabase,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../mod.ts";
import backupDatabase from "../handlers/backup_database.ts";
import httpRequest from "../handlers/http_request.ts";
import noop from "../handlers/noop.ts";
import sendEmail from "../handlers/send_email.ts";
import { makeTempDir, rejectionOf, runningTask, withDb } from "./_helpers.ts";

// ---------------------------------------------------------------------------------------------------------
// Fixtures

/** Enqueues one task through a queue bound to a registry holding `definition`, runs a real worker until
 * nothing is runnable, and returns the task as stored afterwards with its log. */
async function runThroughWorker(db: QueueDatabase, definition: HandlerDefinition, payload: unknown) {
  const registry = new TaskHandlerRegistry();
  registry.registerHandler(definition);
  const queue = new Queue(db, { registry });
  const { id } = await queue.enqueue(definition.type, payload);
  const worker = new WorkerEngine({ db, workerId: "handlers-test", handlerRegistry: registry });
  await worker.runLoop({ untilEmpty: true });
  const task = await queue.get(id);
  assert.ok(task, `task ${id} vanished`);
  return { task, logs: await queue.logs(id) };
}

interface LogLine {
  level: string;
  message: string;
  details?: unknown;
}

/** A handler context on `db` (an unopened in-memory database unless given), recording log lines. */
function makeContext(
  options: { db?: QueueDatabase; signal?: AbortSignal } = {},
): HandlerContext & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    signal: options.signal ?? new AbortController().signal,
    heartbeat: () => Promise.resolve(),
    progress: () => Promise.resolve(),
    log: (level, message, details) => Promise.resolve(void lines.push({ level, message, details })),
    workerId: "handlers-test",
    db: options.db ?? new QueueDatabase(":memory:"),
    attempt: 1,
    lines,
  };
}

/** Parses and runs a payload through `definition.handle` as a worker would, minus the database. */
async function handleDirectly(
  definition: HandlerDefinition,
  payload: unknown,
  options: { id?: number; db?: QueueDatabase; signal?: AbortSignal } = {},
) {
  const parsed = await parsePayload(definition.type, definition.schema, payload);
  const ctx = makeContext(options);
  try {
    await definition.handle(runningTask(parsed, { id: options.id ?? 1, type: definition.type }), ctx);
  } finally {
    if (!options.db) await ctx.db.close();
  }
  return ctx.lines;
}

/** The issues a payload gets from the handler's schema; fails when the payload is accepted. */
async function issuesOf(definition: HandlerDefinition, payload: unknown) {
  const error = await rejectionOf(parsePayload(definition.type, definition.schema, payload));
  assert.ok(error instanceof PayloadValidationError, `expected a PayloadValidationError, got ${error}`);
  return error.issues;
}

/** A bad payload, the field its error must name, and what the message must say. */
type Refusal = [what: string, payload: unknown, path: string, message: RegExp];

function testRefusals(definition: HandlerDefinition, refusals: Refusal[]) {
  for (const [what, payload, path, message] of refusals) {
    test(`the schema refuses ${what}, naming '${path}'`, async () => {
      const issues = await issuesOf(definition, payload);
      const issue = issues.find((candidate) => candidate.path === path);
      assert.ok(issue, `no issue for '${path}' in ${JSON.stringify(issues)}`);
      assert.match(issue.message, message);
    });
  }
}

/** Runs `fn` with environment variables set (undefined: unset), restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** A fresh outbox folder (not created yet: the handler must create it) set as PRISMQ_OUTBOX for `fn`. */
async function withOutbox<T>(fn: (outbox: string) => Promise<T>): Promise<T> {
  const { dir, remove } = makeTempDir("prismq-outbox-");
  const outbox = join(dir, "nested", "outbox");
  try {
    return await withEnv({ PRISMQ_OUTBOX: outbox }, () => fn(outbox));
  } finally {
    remove();
  }
}

// ---------------------------------------------------------------------------------------------------------
// A reader for the messages send_email writes: RFC 5322 headers, RFC 2047 words, RFC 2045 quoted-printable.

interface Message {
  /** Header names in lower case, values unfolded with the space after the colon removed. */
  headers: Map<string, string>;
  /** The header section's physical lines, before unfolding. */
  headerLines: string[];
  /** The body as written (quoted-printable). */
  rawBody: string;
}

function parseMessage(raw: string): Message {
  assert.equal(raw.replace(/\r\n/g, "").search(/[\r\n]/), -1, "a CR or LF outside a CRLF pair");
  const end = raw.indexOf("\r\n\r\n");
  assert.notEqual(end, -1, "no blank line ends the headers");
  const head = raw.slice(0, end);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n(?=[ \t])/g, "").split("\r\n")) {
    const match = /^([!-9;-~]+):(.*)$/.exec(line);
    assert.ok(match, `not a header field: ${JSON.stringify(line)}`);
    const name = match[1].toLowerCase();
    assert.ok(!headers.has(name), `header ${name} appears twice`);
    headers.set(name, match[2].replace(/^ /, ""));
  }
  return { headers, headerLines: head.split("\r\n"), rawBody: raw.slice(end + 4) };
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes the encoded-words in an unstructured header value; blanks between two words are dropped. */
function decodeHeader(value: string): string {
  const between = new RegExp(`(${ENCODED_WORD.source})[ \\t]+(?=${ENCODED_WORD.source})`, "g");
  return value.replace(between, "$1").replace(
    new RegExp(ENCODED_WORD.source, "g"),
    (_, charset, how, text) => {
      assert.match(charset, /^utf-8$/i);
      if (how.toUpperCase() === "B") {
        return strictUtf8.decode(
          Uint8Array.from(atob(text), (c) => c.charCodeAt(0)),
        );
      }
      return decodeBytes(text.replace(/_/g, " "));
    },
  );
}

function decodeQuotedPrintable(body: string): string {
  return decodeBytes(body.replace(/=\r\n/g, ""));
}

/** ASCII with =XX escapes to bytes, then strict UTF-8. */
function decodeBytes(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "=") {
      assert.match(text.slice(i + 1, i + 3), /^[0-9A-F]{2}$/, "a bad =XX escape");
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      assert.ok(text.charCodeAt(i) < 128, "a raw non-ASCII character");
      bytes.push(text.charCodeAt(i));
    }
  }
  return strictUtf8.decode(new Uint8Array(bytes));
}

/** RFC 2045: quoted-printable lines are printable ASCII, at most 76 characters, with no trailing blank. */
function assertQuotedPrintableLines(rawBody: string) {
  for (const line of rawBody.split("\r\n")) {
    assert.ok(line.length <= 76, `a body line of ${line.length} characters: ${line}`);
    assert.match(line, /^[\t\x20-\x7e]*$/, "a body line with a character that needed encoding");
    assert.doesNotMatch(line, /[ \t]$/, "a body line that ends with a blank");
  }
}

/** RFC 5322 recommends 78 characters; RFC 2047 allows 76 on lines holding encoded-words. */
function assertHeaderLines(headerLines: string[]) {
  for (const line of headerLines) {
    const limit = ENCODED_WORD.test(line) ? 76 : 78;
    assert.ok(line.length <= limit, `a header line of ${line.length} characters: ${line}`);
    assert.match(line, /[^ \t]/, "a header line made of blanks only");
  }
}

function readOnlyMessage(outbox: string): { name: string; message: Message } {
  const names = readdirSync(outbox);
  assert.equal(names.length, 1, `expected one file in the outbox, found ${names.join(", ")}`);
  return { name: names[0], message: parseMessage(readFileSync(join(outbox, names[0]), "utf8")) };
}

// ---------------------------------------------------------------------------------------------------------

describe("handler files", () => {
  const files: [string, HandlerDefinition][] = [
    ["backup_database", backupDatabase],
    ["http_request", httpRequest],
    ["noop", noop],
    ["send_email", sendEmail],
  ];
  for (const [file, definition] of files) {
    test(`handlers/${file}.ts handles the type '${file}', version 1.0.0, with a description`, () => {
      assert.equal(definition.type, file);
      assert.equal(definition.version, "1.0.0");
      assert.ok(definition.description.length > 0);
    });
  }
});

describe("send_email", () => {
  test("the schema accepts one address or a list, and hands the handler a list", async () => {
    const one = await parsePayload("send_email", sendEmail.schema, {
      to: "ada@example.com",
      subject: "Hi",
      body: "",
    });
    assert.deepEqual(one, { to: ["ada@example.com"], subject: "Hi", body: "" });
    const full = {
      to: ["ada@example.com", "o'brien+tag@mail.example.org"],
      subject: "Grüße 🎉",
      body: "x".repeat(1000),
      from: "ops@localhost",
      cc: ["grace@example.com"],
      replyTo: "noreply@example.com",
    };
    assert.deepEqual(await parsePayload("send_email", sendEmail.schema, full), full);
  });

  const good = { to: "ada@example.com", subject: "Hi", body: "Hello" };
  testRefusals(sendEmail, [
    ["a missing recipient", { subject: "Hi", body: "" }, "to", /^is required$/],
    ["a recipient that is not an address", { ...good, to: "ada" }, "to", /email address/],
    ["an address with a display name", { ...good, to: "Ada <ada@example.com>" }, "to", /email address/],
    ["an empty recipient list", { ...good, to: [] }, "to", /at least one/],
    ["51 recipients", { ...good, to: Array(51).fill("a@example.com") }, "to", /at most 50/],
    ["a bad address in the list", { ...good, to: ["a@example.com", "nope"] }, "to.1", /email address/],
    ["a number as recipient", { ...good, to: 42 }, "to", /email address/],
    ["a missing subject", { to: "a@example.com", body: "" }, "subject", /^is required$/],
    ["an empty subject", { ...good, subject: "" }, "subject", /empty/],
    ["a subject of 999 characters", { ...good, subject: "s".repeat(999) }, "subject", /998/],
    ["a CRLF in the subject", { ...good, subject: "Hi\r\nBcc: eve@example.com" }, "subject", /line breaks/],
    ["a lone LF in the subject", { ...good, subject: "Hi\nthere" }, "subject", /line breaks/],
    ["a missing body", { to: "a@example.com", subject: "Hi" }, "body", /^is required$/],
    ["a body over 1 MiB", { ...good, body: "é".repeat(512 * 1024 + 1) }, "body", /1 MiB/],
    ["a CRLF in from", { ...good, from: "a@example.com\r\nBcc: eve@example.com" }, "from", /email/],
    ["a CRLF in reply-to", { ...good, replyTo: "a@example.com\r\nX: y" }, "replyTo", /email/],
    ["a CRLF in cc", { ...good, cc: ["a@example.com\nBcc: eve@example.com"] }, "cc.0", /email/],
    ["cc given as one string", { ...good, cc: "a@example.com" }, "cc", /list/],
    ["a non-ASCII address", { ...good, to: "zoë@example.com" }, "to", /email address/],
    ["an unknown field such as bcc", { ...good, bcc: ["eve@example.com"] }, "bcc", /not a field/],
    ["a payload that is not an object", "ada@example.com", "(root)", /JSON object/],
  ]);

  test("a worker writes <id>.eml into PRISMQ_OUTBOX, creating it, with every header and the body", async () => {
    await withOutbox(async (outbox) => {
      await withDb(async (db) => {
        const subject = "Grüße aus Köln — 東京 🎉";
        const body = "Hallo Ada,\n\nnon-ASCII: äöü ß € 東京 🎉\r\nequals = sign, tab\tand trailing space \n" +
          "a long line: " + "0123456789 ".repeat(20) + "\nend";
        const before = Date.now();
        const { task, logs } = await runThroughWorker(db, sendEmail, {
          to: ["ada@example.com", "grace@example.com"],
          cc: ["linus@example.com"],
          replyTo: "support@example.com",
          from: "ops@example.com",
          subject,
          body,
        });
        assert.equal(task.status, "completed", task.errorMessage ?? "");

        const { name, message } = readOnlyMessage(outbox);
        assert.equal(name, `${task.id}.eml`);
        const { headers } = message;
        assert.equal(headers.get("from"), "ops@example.com");
        assert.equal(headers.get("to"), "ada@example.com, grace@example.com");
        assert.equal(headers.get("cc"), "linus@example.com");
        assert.equal(headers.get("reply-to"), "support@example.com");
        assert.match(headers.get("subject")!, /^=\?UTF-8\?B\?/, "a non-ASCII subject must be encoded");
        assert.equal(decodeHeader(headers.get("subject")!), subject);
        assert.match(headers.get("message-id")!, new RegExp(`^<task-${task.id}\\.[0-9a-f]+@prismq>$`));
        assert.equal(headers.get("mime-version"), "1.0");
        assert.equal(headers.get("content-type"), "text/plain; charset=utf-8");
        assert.equal(headers.get("content-transfer-encoding"), "quoted-printable");

        const date = headers.get("date")!;
        assert.match(
          date,
          /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/,
        );
        // Written while the worker ran: the header has whole seconds.
        const written = Date.parse(date);
        assert.ok(written >= before - (before % 1000) && written <= Date.now(), `date ${date} is not now`);

        assertHeaderLines(message.headerLines);
        assertQuotedPrintableLines(message.rawBody);
        assert.equal(decodeQuotedPrintable(message.rawBody), body.replace(/\r\n|\r|\n/g, "\r\n"));

        assert.equal(logs.length, 1);
        assert.equal(logs[0].level, "info");
        assert.match(logs[0].message, new RegExp(`${task.id}\\.eml`));
      });
    });
  });

  test("a plain ASCII subject is written as is, folded at its spaces when long", async () => {
    await withOutbox(async (outbox) => {
      const subject = "Weekly report: " + Array.from({ length: 40 }, (_, i) => `item-${i}`).join(" ");
      await handleDirectly(sendEmail, { to: "ada@example.com", subject, body: "" });
      const { message } = readOnlyMessage(outbox);
      assert.equal(message.headers.get("subject"), subject);
      assert.ok(message.headerLines.some((line) => /^ item/.test(line)), "not folded");
      assertHeaderLines(message.headerLines);
    });
  });

  test("folding never splits a run of blanks, which could leave a line of blanks only", async () => {
    await withOutbox(async (outbox) => {
      // "Subject: " and 69 letters fill a line; a fold between the two blanks would leave one on its own.
      const subject = "a".repeat(69) + "  " + "b".repeat(77);
      await handleDirectly(sendEmail, { to: "ada@example.com", subject, body: "" });
      const { message } = readOnlyMessage(outbox);
      assert.equal(decodeHeader(message.headers.get("subject")!), subject);
      assertHeaderLines(message.headerLines);
    });
  });

  test("an ASCII subject that looks like an encoded-word is encoded, so readers show it as written", async () => {
    await withOutbox(async (outbox) => {
      const subject = "Literally =?UTF-8?B?SGk=?= here";
      await handleDirectly(sendEmail, { to: "ada@example.com", subject, body: "" });
      const { message } = readOnlyMessage(outbox);
      assert.notEqual(message.headers.get("subject"), subject);
      assert.equal(decodeHeader(message.headers.get("subject")!), subject);
    });
  });

  test("50 recipients are folded into short To lines", async () => {
    await withOutbox(async (outbox) => {
      const to = Array.from({ length: 50 }, (_, i) => `recipient-${i}@example.com`);
      await handleDirectly(sendEmail, { to, subject: "Hi", body: "" });
      const { message } = readOnlyMessage(outbox);
      assert.deepEqual(message.headers.get("to")!.split(", "), to);
      assertHeaderLines(message.headerLines);
    });
  });

  test("the sender defaults to PRISMQ_EMAIL_FROM, read when the task runs, else prismq@localhost", async () => {
    await withOutbox(async (outbox) => {
      const payload = { to: "ada@example.com", subject: "Hi", body: "" };
      await withEnv({ PRISMQ_EMAIL_FROM: "robot@example.com" }, () => handleDirectly(sendEmail, payload));
      assert.equal(readOnlyMessage(outbox).message.headers.get("from"), "robot@example.com");
      await withEnv({ PRISMQ_EMAIL_FROM: undefined }, () => handleDirectly(sendEmail, payload));
      assert.equal(readOnlyMessage(outbox).message.headers.get("from"), "prismq@localhost");
    });
  });

  test("an invalid PRISMQ_EMAIL_FROM fails the task without retry and writes nothing", async () => {
    await withOutbox(async (outbox) => {
      await withDb(async (db) => {
        const injected = "robot@example.com\r\nBcc: eve@example.com";
        const { task } = await withEnv(
          { PRISMQ_EMAIL_FROM: injected },
          () => runThroughWorker(db, sendEmail, { to: "ada@example.com", subject: "Hi", body: "" }),
        );
        assert.equal(task.status, "failed");
        assert.equal(task.attempts, 1);
        assert.match(task.errorMessage!, /PRISMQ_EMAIL_FROM/);
        assert.equal(existsSync(outbox) ? readdirSync(outbox).length : 0, 0);
      });
    });
  });

  test("running the same task twice leaves one file, the second message, and no temporary file", async () => {
    await withOutbox(async (outbox) => {
      await handleDirectly(sendEmail, { to: "ada@example.com", subject: "First", body: "one" }, { id: 7 });
      await handleDirectly(sendEmail, { to: "ada@example.com", subject: "Second", body: "two" }, { id: 7 });
      const { name, message } = readOnlyMessage(outbox);
      assert.equal(name, "7.eml");
      assert.equal(message.headers.get("subject"), "Second");
      assert.equal(decodeQuotedPrintable(message.rawBody), "two");
    });
  });

  test("a task whose signal has aborted writes no message and leaves no temporary file", async () => {
    await withOutbox(async (outbox) => {
      const controller = new AbortController();
      const reason = new Error("cancelled");
      controller.abort(reason);
      const error = await rejectionOf(
        handleDirectly(sendEmail, { to: "ada@example.com", subject: "Hi", body: "" }, {
          signal: controller.signal,
        }),
      );
      assert.equal(error, reason);
      assert.deepEqual(readdirSync(outbox), []);
    });
  });

  test("any subject and body round-trip, within the line limits of RFC 5322, 2045 and 2047", async () => {
    const lineBreak = fc.constantFrom("\r\n", "\n", "\r");
    const char = fc.string({ unit: "binary", minLength: 1, maxLength: 1 });
    const subject = fc.oneof(
      fc.string({ unit: "binary", minLength: 1, maxLength: 300 }),
      fc.string({ unit: fc.constantFrom("a", "b", " ", "\t", "=", "?", "é"), minLength: 1, maxLength: 998 }),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 998 }),
    ).filter((text) => text.length <= 998 && !/[\r\n]/.test(text));
    const body = fc.string({
      unit: fc.oneof(
        { weight: 6, arbitrary: char },
        { weight: 2, arbitrary: fc.constantFrom(" ", "\t", "=", "a") },
        { weight: 1, arbitrary: lineBreak },
      ),
      maxLength: 400,
    });
    await withOutbox(async (outbox) => {
      await fc.assert(
        fc.asyncProperty(subject, body, async (subject, body) => {
          await handleDirectly(sendEmail, { to: "ada@example.com", subject, body });
          const { message } = readOnlyMessage(outbox);
          assert.equal(decodeHeader(message.headers.get("subject")!), subject);
          assert.equal(decodeQuotedPrintable(message.rawBody), body.replace(/\r\n|\r|\n/g, "\r\n"));
          assertHeaderLines(message.headerLines);
          assertQuotedPrintableLines(message.rawBody);
        }),
        { numRuns: 150 },
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------------------

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local HTTP server on 127.0.0.1 that records each request and lets `respond` answer it (or not). */
async function withServer<T>(
  respond: (request: Recorded, response: ServerResponse) => void,
  fn: (origin: string, requests: Recorded[]) => Promise<T>,
): Promise<T> {
  const requests: Recorded[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const recorded = { method: request.method!, url: request.url!, headers: request.headers, body };
      requests.push(recorded);
      respond(recorded, response);
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await fn(`http://127.0.0.1:${port}`, requests);
  } finally {
    // A server that never answers holds its connections open: end them, or close() waits forever.
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

const answer = (status: number, body = "") => (_: Recorded, response: ServerResponse) => {
  response.writeHead(status, { "content-type": "text/plain" }).end(body);
};

describe("http_request", () => {
  test("the schema fills in POST, a 10 s timeout, and no acceptStatus", async () => {
    const parsed = await parsePayload("http_request", httpRequest.schema, {
      url: "https://example.com/hook",
    });
    assert.deepEqual(parsed, { url: "https://example.com/hook", method: "POST", timeoutMs: 10_000 });
  });

  const url = "https://example.com/hook";
  testRefusals(httpRequest, [
    ["a missing url", {}, "url", /^is required$/],
    ["a url that is not one", { url: "example.com/hook" }, "url", /http/],
    ["an ftp url", { url: "ftp://example.com/file" }, "url", /http/],
    ["an unknown method", { url, method: "TRACE" }, "method", /GET, POST/],
    ["a lower-case method", { url, method: "post" }, "method", /POST/],
    ["a header name with a space", { url, headers: { "X Bad": "1" } }, "headers.X Bad", /header name/],
    ["a header value with CRLF", { url, headers: { "X-A": "1\r\nX-B: 2" } }, "headers.X-A", /CR, LF/],
    ["a header value that is a number", { url, headers: { "X-A": 1 } }, "headers.X-A", /string/],
    ["a timeout of 0", { url, timeoutMs: 0 }, "timeoutMs", /at least 1/],
    ["a timeout over five minutes", { url, timeoutMs: 300_001 }, "timeoutMs", /at most 300000/],
    ["a fractional timeout", { url, timeoutMs: 1.5 }, "timeoutMs", /whole/],
    ["a status below 100", { url, acceptStatus: [200, 99] }, "acceptStatus.1", /100 to 599/],
    ["a status above 599", { url, acceptStatus: [600] }, "acceptStatus.0", /100 to 599/],
    ["an empty acceptStatus", { url, acceptStatus: [] }, "acceptStatus", /at least one/],
    ["a body on a GET", { url, method: "GET", body: "x" }, "body", /GET and HEAD/],
    ["a body on a HEAD", { url, method: "HEAD", body: { a: 1 } }, "body", /GET and HEAD/],
    ["an unknown field", { url, timeout: 5 }, "timeout", /not a field/],
    ["a payload that is not an object", url, "(root)", /JSON object/],
  ]);

  test("a worker POSTs a JSON body with its headers, and the task completes", async () => {
    await withServer(answer(204), async (origin, requests) => {
      await withDb(async (db) => {
        const { task, logs } = await runThroughWorker(db, httpRequest, {
          url: `${origin}/hooks/deploy?token=s3cret`,
          headers: { "X-Signature": "abc123" },
          body: { event: "deployed", version: 3, tags: ["a", "ü"] },
        });
        assert.equal(task.status, "completed", task.errorMessage ?? "");
        assert.equal(requests.length, 1);
        const [request] = requests;
        assert.equal(request.method, "POST");
        assert.equal(request.url, "/hooks/deploy?token=s3cret");
        assert.equal(request.headers["x-signature"], "abc123");
        assert.equal(request.headers["content-type"], "application/json");
        assert.deepEqual(JSON.parse(request.body), { event: "deployed", version: 3, tags: ["a", "ü"] });
        assert.equal(logs.length, 1);
        assert.equal(logs[0].level, "info");
        assert.match(logs[0].message, /POST http:\/\/127\.0\.0\.1:\d+ answered 204/);
        assert.doesNotMatch(logs[0].message, /s3cret/, "the log must not show the URL's query");
      });
    });
  });

  test("a string body is sent as is, with the content type given; other methods are used as given", async () => {
    await withServer(answer(200), async (origin, requests) => {
      await handleDirectly(httpRequest, {
        url: `${origin}/text`,
        method: "PUT",
        headers: { "Content-Type": "text/csv" },
        body: "a,b\n1,2\n",
      });
      await handleDirectly(httpRequest, { url: `${origin}/json`, method: "PATCH", body: [1, "two"] });
      await handleDirectly(httpRequest, {
        url: `${origin}/override`,
        headers: { "content-type": "application/vnd.api+json" },
        body: { a: 1 },
      });
      await handleDirectly(httpRequest, { url: `${origin}/get`, method: "GET" });
      await handleDirectly(httpRequest, { url: `${origin}/gone`, method: "DELETE" });
      await handleDirectly(httpRequest, { url: `${origin}/head`, method: "HEAD" });
      const seen = requests.map((r) => [r.method, r.url, r.headers["content-type"], r.body]);
      assert.deepEqual(seen, [
        ["PUT", "/text", "text/csv", "a,b\n1,2\n"],
        ["PATCH", "/json", "application/json", '[1,"two"]'],
        ["POST", "/override", "application/vnd.api+json", '{"a":1}'],
        ["GET", "/get", undefined, ""],
        ["DELETE", "/gone", undefined, ""],
        ["HEAD", "/head", undefined, ""],
      ]);
    });
  });

  test("a 500 sends the task back to the queue, naming the status and the body's first 200 characters", async () => {
    const body = "E".repeat(150) + "F".repeat(500);
    await withServer(answer(500, body), async (origin) => {
      await withDb(async (db) => {
        const before = Date.now();
        const { task } = await runThroughWorker(db, httpRequest, { url: `${origin}/hook` });
        assert.equal(task.status, "queued");
        assert.equal(task.attempts, 1);
        // Due at least the shortest first backoff after the attempt failed, which was after `before` (a busy
        // machine may be past that time by now, so not "later than now").
        const shortest = backoffDelayMs(DEFAULT_RETRY_POLICY, 1, () => 0);
        assert.ok(task.runAfter >= before + shortest, "a retry waits for its backoff");
        assert.match(task.errorMessage!, /^POST http:\/\/127\.0\.0\.1:\d+ answered 500\b/);
        assert.ok(task.errorMessage!.includes("E".repeat(150) + "F".repeat(50)));
        assert.ok(!task.errorMessage!.includes("F".repeat(51)), "more than 200 characters of the body");
      });
    });
  });

  test("acceptStatus [404] accepts a 404 and refuses a 200", async () => {
    await withServer(answer(404, "not here"), async (origin) => {
      const lines = await handleDirectly(httpRequest, { url: origin, acceptStatus: [404] });
      assert.match(lines[0].message, /answered 404/);
    });
    await withServer(answer(200, "fine"), async (origin) => {
      const error = await rejectionOf(handleDirectly(httpRequest, { url: origin, acceptStatus: [404] }));
      assert.ok(error instanceof Error && !(error instanceof NonRetryableError));
      assert.match(error.message, /answered 200, which is not accepted: fine$/);
    });
  });

  test("a server that never answers fails the attempt with a retryable timeout error", async () => {
    await withServer(() => {}, async (origin, requests) => {
      const started = performance.now();
      // The worker's signal stands in for a test timeout, so that a handler without a timeout of its own
      // fails rather than hangs: then its reason, not the handler's message, would be the error. A minute,
      // so that however slowly this machine runs the handler's 200 ms come first.
      const error = await rejectionOf(
        handleDirectly(httpRequest, { url: origin, timeoutMs: 200 }, { signal: AbortSignal.timeout(60_000) }),
      );
      const elapsed = performance.now() - started;
      assert.ok(error instanceof Error && !(error instanceof NonRetryableError), String(error));
      assert.match(error.message, /^POST http:\/\/127\.0\.0\.1:\d+ timed out after 200 ms\.$/);
      assert.ok(elapsed >= 190, `gave up after ${elapsed} ms, before its timeout`);
      assert.equal(requests.length, 1);
    });
  });

  test("a refused connection fails the attempt with a retryable error that says why", async () => {
    // A port that was just free: nothing listens on it any more.
    const origin = await withServer(answer(200), (origin) => Promise.resolve(origin));
    const error = await rejectionOf(handleDirectly(httpRequest, { url: origin, timeoutMs: 5_000 }));
    assert.ok(error instanceof Error && !(error instanceof NonRetryableError), String(error));
    assert.match(error.message, /^POST http:\/\/127\.0\.0\.1:\d+ failed: .+/);
    assert.doesNotMatch(error.message, /timed out/);
  });

  test("when the worker's signal aborts, the request stops and its reason is rethrown unchanged", async () => {
    await withServer(() => {}, async (origin) => {
      const controller = new AbortController();
      const reason = new Error("the task was cancelled");
      setTimeout(() => controller.abort(reason), 50);
      // The request's own minute-long timeout would end it with its own message: the reason itself shows
      // the abort stopped it.
      const error = await rejectionOf(
        handleDirectly(httpRequest, { url: origin, timeoutMs: 60_000 }, { signal: controller.signal }),
      );
      assert.equal(error, reason);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("backup_database", () => {
  testRefusals(backupDatabase, [
    ["a missing path", {}, "path", /^is required$/],
    ["an empty path", { path: "" }, "path", /empty/],
    ["a blank path", { path: "  " }, "path", /empty/],
    ["an overwrite that is not a boolean", { path: "b.db", overwrite: "yes" }, "overwrite", /true or false/],
  ]);

  /** A queue database holding a few tasks, and a separate folder for backups. */
  async function withTasksAndFolder(fn: (db: QueueDatabase, folder: string, ids: number[]) => Promise<void>) {
    const { dir, remove } = makeTempDir("prismq-backup-");
    try {
      await withDb(async (db) => {
        const queue = new Queue(db);
        const tasks = await queue.enqueueMany([
          { type: "later", payload: { n: 1 }, delayMs: 3_600_000 },
          { type: "later", payload: { n: 2 }, delayMs: 3_600_000, priority: 5 },
        ]);
        await fn(db, dir, tasks.map((task) => task.id));
      });
    } finally {
      remove();
    }
  }

  test("a worker writes a copy that opens as a queue database holding the same tasks", async () => {
    await withTasksAndFolder(async (db, folder, ids) => {
      const path = join(folder, "copy.db");
      const { task, logs } = await runThroughWorker(db, backupDatabase, { path });
      assert.equal(task.status, "completed", task.errorMessage ?? "");
      assert.deepEqual(readdirSync(folder), ["copy.db"], "a temporary file was left behind");

      const copy = new QueueDatabase(path);
      try {
        const copied = await new Queue(copy).list();
        const byId = new Map(copied.map((t) => [t.id, t]));
        assert.deepEqual(byId.get(ids[0])?.payload, { n: 1 });
        assert.deepEqual(byId.get(ids[1])?.payload, { n: 2 });
        assert.equal(byId.get(ids[1])?.priority, 5);
        // The copy was taken while the backup task itself was running.
        assert.equal(byId.get(task.id)?.status, "running");
      } finally {
        await copy.close();
      }
      const size = readFileSync(path).length;
      assert.equal(logs.length, 1);
      assert.match(logs[0].message, new RegExp(`\\(${size} bytes\\)`));
      assert.deepEqual(logs[0].details, { path, bytes: size });
    });
  });

  test("an existing file is refused without overwrite: the task fails, is not retried, and the file stays", async () => {
    await withTasksAndFolder(async (db, folder) => {
      const path = join(folder, "existing.db");
      writeFileSync(path, "previous backup");
      const { task } = await runThroughWorker(db, backupDatabase, { path });
      assert.equal(task.status, "failed");
      assert.equal(task.attempts, 1);
      assert.match(task.errorMessage!, /already exists.*overwrite: true/);
      assert.equal(readFileSync(path, "utf8"), "previous backup");
      assert.deepEqual(readdirSync(folder), ["existing.db"]);
    });
  });

  test("with overwrite: true, an existing file is replaced by the copy, and no temporary file is left", async () => {
    await withTasksAndFolder(async (db, folder, ids) => {
      const path = join(folder, "existing.db");
      writeFileSync(path, "previous backup");
      const { task } = await runThroughWorker(db, backupDatabase, { path, overwrite: true });
      assert.equal(task.status, "completed", task.errorMessage ?? "");
      assert.deepEqual(readdirSync(folder), ["existing.db"]);
      const copy = new QueueDatabase(path);
      try {
        assert.deepEqual((await new Queue(copy).get(ids[0]))?.payload, { n: 1 });
      } finally {
        await copy.close();
      }
    });
  });

  test("a backup that fails for any other reason than a refusal is retried", async () => {
    const { dir, remove } = makeTempDir("prismq-backup-");
    const db = new QueueDatabase(join(dir, "queue.db"));
    try {
      await db.initializeSchema();
      await db.close();
      // A closed database cannot be copied: a failure of the database, not of the target.
      const error = await rejectionOf(handleDirectly(backupDatabase, { path: join(dir, "copy.db") }, { db }));
      assert.ok(error instanceof Error && !(error instanceof NonRetryableError), String(error));
      assert.deepEqual(readdirSync(dir).filter((name) => !name.startsWith("queue.db")), []);
    } finally {
      remove();
    }
  });

  test("a folder that does not exist fails the task without retry", async () => {
    await withTasksAndFolder(async (db, folder) => {
      const path = join(folder, "missing", "copy.db");
      const { task } = await runThroughWorker(db, backupDatabase, { path });
      assert.equal(task.status, "failed");
      assert.equal(task.attempts, 1);
      assert.match(task.errorMessage!, /folder .*missing does not exist/);
      assert.equal(existsSync(join(folder, "missing")), false);
    });
  });

  test("a target that is a folder, or the database itself, is refused even with overwrite", async () => {
    await withDb(async (db, dbPath) => {
      const folderTarget = join(dbPath, "..", "sub");
      mkdirSync(folderTarget);
      for (
        const [path, message] of [[folderTarget, /is a folder/], [
          dbPath,
          /is the database .*, which is open/,
        ]] as const
      ) {
        const error = await rejectionOf(handleDirectly(backupDatabase, { path, overwrite: true }, { db }));
        assert.ok(error instanceof NonRetryableError, String(error));
        assert.match(error.message, message);
      }
      assert.ok((await new Queue(db).stats()) !== undefined, "the database still works");
    });
  });

  test("an in-memory database is backed up to a file", async () => {
    const db = new QueueDatabase(":memory:");
    const { dir, remove } = makeTempDir("prismq-backup-");
    try {
      await db.initializeSchema();
      const path = join(dir, "copy.db");
      const { task } = await runThroughWorker(db, backupDatabase, { path });
      assert.equal(task.status, "completed", task.errorMessage ?? "");
      assert.ok(existsSync(path));
    } finally {
      await db.close();
      remove();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

describe("noop", () => {
  test("the schema defaults sleepMs to 0", async () => {
    assert.deepEqual(await parsePayload("noop", noop.schema, {}), { sleepMs: 0 });
  });

  testRefusals(noop, [
    ["a negative sleep", { sleepMs: -1 }, "sleepMs", /at least 0/],
    ["a sleep over a minute", { sleepMs: 60_001 }, "sleepMs", /at most 60000/],
    ["a fractional sleep", { sleepMs: 1.5 }, "sleepMs", /whole/],
    ["a sleep given as a string", { sleepMs: "10" }, "sleepMs", /number/],
    ["an unknown field", { sleep: 10 }, "sleep", /not a field/],
    ["null as payload", null, "(root)", /JSON object/],
  ]);

  test("a worker completes it after sleeping at least sleepMs", async () => {
    await withDb(async (db) => {
      const started = performance.now();
      const { task } = await runThroughWorker(db, noop, { sleepMs: 100 });
      assert.equal(task.status, "completed", task.errorMessage ?? "");
      assert.ok(performance.now() - started >= 95, "returned before sleeping");
    });
  });

  test("it stops at once when its signal aborts, rejecting with the signal's reason", async () => {
    const controller = new AbortController();
    const reason = new Error("shutting down");
    setTimeout(() => controller.abort(reason), 20);
    const started = performance.now();
    const error = await rejectionOf(handleDirectly(noop, { sleepMs: 60_000 }, { signal: controller.signal }));
    assert.equal(error, reason);
    // Short of the minute it was asked to sleep: it did not sleep it out and then reject. A bound on what it
    // did, not on how fast this machine is.
    assert.ok(performance.now() - started < 60_000, "kept sleeping after the abort");
  });

  test("an abort clears the pending timer, which would otherwise keep the process alive", async () => {
    const pending = new Set<unknown>();
    const { setTimeout: realSet, clearTimeout: realClear } = globalThis;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      const timer = realSet(() => (pending.delete(timer), fn()), ms);
      pending.add(timer);
      return timer;
    }) as typeof setTimeout;
    globalThis.clearTimeout = ((timer?: ReturnType<typeof setTimeout>) => {
      pending.delete(timer);
      realClear(timer);
    }) as typeof clearTimeout;
    try {
      const controller = new AbortController();
      const sleeping = handleDirectly(noop, { sleepMs: 60_000 }, { signal: controller.signal });
      // Until noop has started its timer, looking with the real timers (the helpers' would count).
      const deadline = performance.now() + 30_000;
      while (pending.size === 0 && performance.now() < deadline) {
        await new Promise((resolve) => realSet(resolve, 5));
      }
      assert.equal(pending.size, 1, "noop did not start a timer");
      controller.abort(new Error("stop"));
      await rejectionOf(sleeping);
      assert.equal(pending.size, 0, "the timer is still pending");
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
  });

  test("a signal aborted before it starts rejects right away", async () => {
    const controller = new AbortController();
    controller.abort(new Error("already cancelled"));
    const error = await rejectionOf(handleDirectly(noop, { sleepMs: 60_000 }, { signal: controller.signal }));
    assert.match(String(error), /already cancelled/);
  });
});

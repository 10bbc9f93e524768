/**
 * `send_email`: writes a plain-text message as an RFC 5322 `.eml` file into an outbox folder, for a mail
 * transfer agent or a pickup service to send.
 *
 * Configuration, read when a task runs: `PRISMQ_OUTBOX` (default `./outbox`, created if missing) and
 * `PRISMQ_EMAIL_FROM` (the sender when the payload names none; default `prismq@localhost`).
 *
 * @module
 */
import { mkdir, open, rename, rm } from "node:fs/promises";
import { platform } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import * as v from "valibot";
import { payloadObject } from "./_payload.ts";
import { randomHex } from "../src/random.ts";
import { defineHandler, NonRetryableError } from "../mod.ts";
import { readEnv } from "../src/platform.ts";

const DEFAULT_OUTBOX = "./outbox";
const DEFAULT_FROM = "prismq@localhost";
const MAX_RECIPIENTS = 50;
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * An RFC 5322 addr-spec with a dot-atom local part and a domain of host-name labels (`localhost` included).
 * Its characters exclude CR, LF, spaces, commas and angle brackets, so an address cannot break out of its
 * header. Non-ASCII addresses are refused: RFC 2047 forbids encoded-words inside an address.
 */
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const ADDRESS = new RegExp(`^${ATEXT}(?:\\.${ATEXT})*@${LABEL}(?:\\.${LABEL})*$`);

const address = v.pipe(
  v.string("must be an email address"),
  v.maxLength(254, "must be at most 254 characters"),
  v.regex(ADDRESS, "must be a plain email address like ada@example.com (no display name, no line breaks)"),
);

const schema = payloadObject({
  to: v.pipe(
    v.union([
      address,
      v.pipe(
        v.array(address, "must be an email address or a list of them"),
        v.minLength(1, "must name at least one recipient"),
        v.maxLength(MAX_RECIPIENTS, `must name at most ${MAX_RECIPIENTS} recipients`),
      ),
    ], "must be an email address or a list of them"),
    v.transform((to) => typeof to === "string" ? [to] : to),
  ),
  subject: v.pipe(
    v.string("must be a string"),
    v.minLength(1, "must not be empty"),
    v.maxLength(998, "must be at most 998 characters"),
    // Line breaks in a header would let the payload add headers of its own (header injection).
    v.check((subject) => !/[\r\n]/.test(subject), "must not contain line breaks (CR or LF)"),
  ),
  body: v.pipe(v.string("must be a string"), v.maxBytes(MAX_BODY_BYTES, "must be at most 1 MiB of UTF-8")),
  from: v.optional(address),
  cc: v.optional(
    v.pipe(
      v.array(address, "must be a list of email addresses"),
      v.maxLength(MAX_RECIPIENTS, `must name at most ${MAX_RECIPIENTS} recipients`),
    ),
  ),
  replyTo: v.optional(address),
});

type Email = v.InferOutput<typeof schema>;

export default defineHandler({
  type: "send_email",
  schema,
  description: "Writes a plain-text email as an RFC 5322 .eml file into the outbox folder ($PRISMQ_OUTBOX).",
  version: "1.0.0",
  async handle(task, ctx) {
    const from = task.payload.from ?? defaultSender();
    const messageId = `<task-${task.id}.${randomHex(12)}@prismq>`;
    const message = formatMessage({ ...task.payload, from }, messageId, new Date());

    const outbox = resolve(readEnv("PRISMQ_OUTBOX") || DEFAULT_OUTBOX);
    await mkdir(outbox, { recursive: true });
    // Delivery is at least once: a task can run again after its message was written. Naming the file after
    // the task makes a second run replace the first message instead of sending it twice.
    const path = join(outbox, `${task.id}.eml`);
    await writeAtomically(path, message, ctx.signal);
    await ctx.log("info", `Wrote ${messageId} for ${task.payload.to.length} recipient(s) to ${path}.`, {
      path,
      messageId,
    });
  },
});

function defaultSender(): string {
  const from = readEnv("PRISMQ_EMAIL_FROM") || DEFAULT_FROM;
  // The variable bypasses the schema, and an address from it goes into a header all the same.
  if (!ADDRESS.test(from) || from.length > 254) {
    throw new NonRetryableError(
      `PRISMQ_EMAIL_FROM must be a plain email address like ada@example.com, got ${JSON.stringify(from)}.`,
    );
  }
  return from;
}

/** The whole message: headers, a blank line, and the quoted-printable body, with CRLF line ends. */
function formatMessage(email: Email & { from: string }, messageId: string, date: Date): string {
  const headers = [
    `From: ${email.from}`,
    addressHeader("To", email.to),
    email.cc?.length ? addressHeader("Cc", email.cc) : undefined,
    email.replyTo ? `Reply-To: ${email.replyTo}` : undefined,
    textHeader("Subject", email.subject),
    // toUTCString() gives RFC 5322's date-time, except that "GMT" is an obsolete zone: write +0000.
    `Date: ${date.toUTCString().replace(/GMT$/, "+0000")}`,
    `Message-ID: ${messageId}`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
  ];
  return headers.filter((line) => line !== undefined).join("\r\n") + "\r\n\r\n" +
    encodeQuotedPrintable(email.body);
}

/** RFC 5322 recommends lines of at most 78 characters; longer header fields are folded. */
const MAX_HEADER_LINE = 78;

/** `To: a, b, …`, folded after a comma whenever the next address would make the line too long. */
function addressHeader(name: string, addresses: readonly string[]): string {
  let header = `${name}: ${addresses[0]}`;
  let lineLength = header.length;
  for (const address of addresses.slice(1)) {
    if (lineLength + 2 + address.length > MAX_HEADER_LINE) {
      header += `,\r\n ${address}`;
      lineLength = 1 + address.length;
    } else {
      header += `, ${address}`;
      lineLength += 2 + address.length;
    }
  }
  return header;
}

/**
 * An unstructured header such as Subject: the text itself when it is printable ASCII that folds at its
 * spaces into short lines, else RFC 2047 encoded-words.
 */
function textHeader(name: string, text: string): string {
  return foldPlainText(name, text) ?? encodedWords(name, text);
}

function foldPlainText(name: string, text: string): string | undefined {
  // Text that merely looks like an encoded-word would be decoded by readers, so it is encoded too.
  if (!/^[\x20-\x7e\t]*$/.test(text) || text.includes("=?")) return undefined;
  // Fold only before a run of blanks that is followed by a word, so that no line is blank; unfolding (removing
  // the CRLFs) gives back the exact text.
  const [first, ...rest] = text.split(/(?<![ \t])(?=[ \t]+[^ \t])/);
  const lines = [`${name}: ${first}`];
  for (const piece of rest) {
    if (lines[lines.length - 1].length + piece.length > MAX_HEADER_LINE) lines.push(piece);
    else lines[lines.length - 1] += piece;
  }
  return lines.every((line) => line.length <= MAX_HEADER_LINE) ? lines.join("\r\n") : undefined;
}

/**
 * 39 UTF-8 bytes make 52 base64 characters, so `Subject: =?UTF-8?B?…?=` stays within the 76-character lines
 * that RFC 2047 allows for encoded-words.
 */
const BYTES_PER_WORD = 39;
const utf8 = new TextEncoder();

/** `Name: =?UTF-8?B?…?=`, one word per line; a character is never split between two words (RFC 2047 §5). */
function encodedWords(name: string, text: string): string {
  const words: string[] = [];
  let chunk: number[] = [];
  for (const char of text) {
    const bytes = utf8.encode(char);
    if (chunk.length + bytes.length > BYTES_PER_WORD) {
      words.push(encodedWord(chunk));
      chunk = [];
    }
    chunk.push(...bytes);
  }
  words.push(encodedWord(chunk));
  // Readers drop the folding whitespace between adjacent encoded-words.
  return `${name}: ${words.join("\r\n ")}`;
}

function encodedWord(bytes: number[]): string {
  return `=?UTF-8?B?${btoa(String.fromCharCode(...bytes))}?=`;
}

/** Quoted-printable lines are at most 76 characters, the `=` of a soft line break included (RFC 2045 §6.7). */
const MAX_ENCODED_LINE = 76;
const HEX = Array.from({ length: 256 }, (_, byte) => "=" + byte.toString(16).toUpperCase().padStart(2, "0"));

/** Encodes text as quoted-printable UTF-8. Any line break (LF, CR or CRLF) becomes a CRLF. */
function encodeQuotedPrintable(text: string): string {
  return text.split(/\r\n|\r|\n/).map(encodeLine).join("\r\n");
}

function encodeLine(line: string): string {
  const bytes = utf8.encode(line);
  const lines: string[] = [];
  let current = "";
  bytes.forEach((byte, index) => {
    const isLast = index === bytes.length - 1;
    const token = isLiteral(byte, isLast) ? String.fromCharCode(byte) : HEX[byte];
    // Break before a token rather than inside it, leaving room for the "=" of the soft break.
    if (current.length + token.length > MAX_ENCODED_LINE - 1) {
      lines.push(current + "=");
      current = "";
    }
    current += token;
  });
  lines.push(current);
  return lines.join("\r\n");
}

/** Printable ASCII other than "=" stands for itself; so do spaces and tabs, except at the end of a line. */
function isLiteral(byte: number, endsLine: boolean): boolean {
  if (byte === 0x20 || byte === 0x09) return !endsLine;
  return byte >= 0x21 && byte <= 0x7e && byte !== 0x3d;
}

/**
 * Writes `content` to `path` so that readers see either the previous file or the whole new one: a temporary
 * file in the same folder is written and flushed, then renamed over `path`. The temporary name is hidden and
 * does not end in `.eml`, so a pickup service scanning the outbox never takes a half-written message.
 */
async function writeAtomically(path: string, content: string, signal: AbortSignal): Promise<void> {
  const folder = dirname(path);
  const temp = join(folder, `.${basename(path)}.${randomHex(6)}.tmp`);
  try {
    const file = await open(temp, "wx");
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    // A task cancelled meanwhile must not send its message.
    signal.throwIfAborted();
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncFolder(folder);
}

/**
 * Flushes a folder's entries, so that a rename survives a power cut (POSIX). Windows cannot open a folder,
 * and its renames need no such flush.
 */
async function syncFolder(folder: string): Promise<void> {
  if (platform() === "win32") return;
  const handle = await open(folder, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

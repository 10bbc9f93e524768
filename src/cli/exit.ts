/**
 * How the command line ends on an error: its exit code, and the one line it prints. The rule tells three
 * kinds apart by class and code, never by message:
 *
 * - **2, a mistake in what was asked**: a {@link UsageError} (the command line's own checks of its options,
 *   arguments and input), and the library refusing the user's values: a `TypeError` or `RangeError` of
 *   PrismQ's checks (code `INVALID_ARGUMENT`), a payload that is invalid or too large, a task type with no
 *   handler, a task that does not exist, a database location that cannot be read.
 * - **1, a failure while doing it**: any other PrismQ error (the database, a task in the wrong state) and any
 *   other `Error` from outside (a file that cannot be read).
 * - **70 (`EX_SOFTWARE`), a bug in prismq**: an error that JavaScript itself raises for a mistake in the
 *   code, such as a `TypeError` without PrismQ's code ("Cannot read properties of undefined"), or a thrown
 *   value that is not an `Error` at all. The line says so and how to get the stack trace.
 *
 * @module
 */
import { INVALID_ARGUMENT, isInvalidArgument, PrismqError } from "../errors.ts";
import { UsageError } from "./args.ts";

/** Exit codes: success, a failure while doing the work, a mistake in what was asked, and a bug in prismq. */
export const EXIT = { ok: 0, failure: 1, usage: 2, bug: 70 } as const;

/** The codes of errors that say what was asked cannot be done as asked: exit code 2. */
const USAGE_CODES: ReadonlySet<string> = new Set([
  "USAGE",
  INVALID_ARGUMENT,
  "PAYLOAD_INVALID",
  "PAYLOAD_TOO_LARGE",
  "HANDLER_NOT_REGISTERED",
  "TASK_NOT_FOUND",
  "DATABASE_URL_INVALID",
]);

/** The classes JavaScript throws for mistakes in code; PrismQ's own checks mark theirs with a code. */
const LANGUAGE_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

/** The exit code for a command that failed with `error`; see the module's rule. */
export function exitCodeFor(error: unknown): number {
  const code = error instanceof PrismqError ? error.code : isInvalidArgument(error) ? INVALID_ARGUMENT : "";
  if (USAGE_CODES.has(code)) return EXIT.usage;
  if (code !== "") return EXIT.failure;
  return isBug(error) ? EXIT.bug : EXIT.failure;
}

function isBug(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  return LANGUAGE_ERRORS.some((type) => error instanceof type);
}

/**
 * The line to print for `error`, after `prefix` ("prismq enqueue"): its message and any hint; for a bug,
 * saying that it is one, and how to see where it happened.
 */
export function describeFailure(prefix: string, error: unknown, exitCode: number): string {
  const hint = error instanceof UsageError && error.hint ? ` ${error.hint}` : "";
  let message = error instanceof Error ? error.message : String(error);
  if (exitCode === EXIT.bug) {
    const name = error instanceof Error ? `${error.name}: ` : "a thrown value: ";
    message =
      `internal error, a bug in prismq: ${name}${
        message.replace(/\.$/, "")
      }. Run it again with PRISMQ_DEBUG=1 for the ` +
      `stack trace, and report it.`;
  }
  return `${prefix}: ${message}${hint}\n`.replace(/\n(?!$)/g, " ");
}

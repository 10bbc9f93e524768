/**
 * Parsing of the command line's words: options, durations, numbers and times, each refused with an error
 * that says what was wrong and what to type instead.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { isWholeNumber, MAX_DURATION_MS, wholeNumberRange } from "../checks.ts";
import { PrismqError } from "../errors.ts";
import { parseIsoTime } from "../iso_time.ts";

/**
 * A mistake in how a command was called: an option, an argument, or input the command read (a payload, a
 * file that is not there). Raised only by the command line's own checks; it prints it and exits with code 2.
 */
export class UsageError extends PrismqError {
  override name = "UsageError";
  override readonly code = "USAGE";
  constructor(message: string, readonly hint?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `argv` strictly: an unknown option or a missing value is a {@link UsageError} naming the command.
 * A negative number after an option that takes a value is that value (`--priority -1`), as a person means
 * it: no option is spelt with a digit.
 */
export function parseCommand<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({
      args: joinNegativeValues(argv, options),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, ".");
    throw new UsageError(message, `Run 'prismq ${command} --help' for the options.`);
  }
}

/** `--flag -1` as `--flag=-1` for options that take a value, up to a `--` that ends the options. */
function joinNegativeValues(argv: string[], options: Options): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") return [...args, ...argv.slice(i)];
    const name = arg.startsWith("--") && !arg.includes("=") ? arg.slice(2) : undefined;
    const next = argv[i + 1];
    if (
      name !== undefined && Object.hasOwn(options, name) && options[name].type === "string" &&
      next !== undefined && /^-\d/.test(next)
    ) {
      args.push(`${arg}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  return args;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as `500ms`, `30s`, `5m`, `2h`, `7d` or `1h30m` into milliseconds.
 *
 * @throws {UsageError} naming the flag and showing valid forms
 */
export function parseDuration(flag: string, text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  const covered = parts.map((part) => part[0]).join("");
  if (parts.length === 0 || covered !== text) {
    throw new UsageError(
      `Invalid duration '${text}' for ${flag}.`,
      "Use a number with a unit: 500ms, 30s, 5m, 2h, 7d, or combined like 1h30m.",
    );
  }
  const ms = Math.round(parts.reduce((sum, [, amount, unit]) => sum + Number(amount) * UNITS[unit], 0));
  if (!(ms <= MAX_DURATION_MS)) {
    throw new UsageError(
      `The duration '${text}' for ${flag} is too long.`,
      "The longest is 100 years (36500d).",
    );
  }
  return ms;
}

/**
 * Parses a whole number within bounds, written in digits (no exponent, no fraction), by the rule of the
 * library's own checks (`isWholeNumber`).
 *
 * @throws {UsageError} naming the flag and the accepted range
 */
export function parseInteger(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!isWholeNumber(value, min, max)) {
    throw new UsageError(`Invalid value '${text}' for ${flag}: expected ${wholeNumberRange(min, max)}.`);
  }
  return value;
}

/**
 * Parses an ISO-8601 time with a zone: `2030-01-31T09:00:00Z`, `2030-01-31T10:00+01:00`.
 */
export function parseTime(flag: string, text: string): number {
  const ms = parseIsoTime(text);
  if (!Number.isFinite(ms)) {
    throw new UsageError(
      `Invalid time '${text}' for ${flag}.`,
      "Use ISO-8601 with a zone, like 2030-01-31T09:00:00Z or 2030-01-31T10:00:00+01:00.",
    );
  }
  return ms;
}

/** Splits a comma-separated list, refusing empty items. */
export function parseList(flag: string, text: string): string[] {
  const items = text.split(",").map((item) => item.trim());
  if (items.some((item) => item === "")) {
    throw new UsageError(`Invalid list '${text}' for ${flag}: items are separated by single commas.`);
  }
  return items;
}

/** Parses a task id given as a positional argument. */
export function parseTaskId(command: string, text: string | undefined): number {
  if (text === undefined) throw new UsageError(`Missing task id.`, `Usage: prismq ${command} <id>`);
  return parseInteger("the task id", text, 1);
}

/** Refuses positional arguments beyond the first `expected`. */
export function expectArguments(positionals: string[], expected: number): void {
  if (positionals.length > expected) throw new UsageError(`Unexpected argument '${positionals[expected]}'.`);
}

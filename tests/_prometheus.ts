/**
 * A strict reader of Prometheus's text exposition format (0.0.4), for the metrics tests: every line must be
 * a HELP, a TYPE or a sample the grammar allows; each family's HELP and TYPE come once, before its samples,
 * which stay together; label values use only the escapes the format defines; every histogram series has
 * buckets ascending in `le` with counts that never fall, ending at `+Inf`, and a `_sum` and a `_count` equal
 * to that last bucket. Anything else fails the test with an AssertionError.
 *
 * @module
 */
import assert from "node:assert/strict";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Parsed {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL_NAME = "[a-zA-Z_][a-zA-Z0-9_]*";
const VALUE = String.raw`(?:[+-]?Inf|NaN|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)`;
const LABEL_VALUE = String.raw`"(?:[^"\\\n]|\\[\\"n])*"`;
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL_NAME}=${LABEL_VALUE})(?:,${LABEL_NAME}=${LABEL_VALUE})*)?\\})? (${VALUE})$`,
);
const LABEL = new RegExp(`(${LABEL_NAME})=(${LABEL_VALUE})`, "g");

function unescapeLabel(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\([\\"n])/g, (_, c: string) => (c === "n" ? "\n" : c));
}

/** The family a sample belongs to: a histogram's `_bucket`, `_sum` and `_count` belong to it. */
function familyOf(name: string, types: Map<string, string>): string {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return base !== name && types.get(base) === "histogram" ? base : name;
}

/** Parses exposition text strictly: any line the format does not allow fails the test. */
export function parsePrometheus(text: string): Parsed {
  assert.ok(text.endsWith("\n"), "the text ends with a line feed");
  const parsed: Parsed = { types: new Map(), help: new Map(), samples: [] };
  const closed = new Set<string>();
  let current: string | undefined;
  const series = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    const help = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (help) {
      assert.ok(!parsed.help.has(help[1]!), `one HELP for ${help[1]}`);
      assert.doesNotMatch(help[2]!, /\\[^\\n]/, `HELP escapes only \\ and line feeds: ${line}`);
      parsed.help.set(help[1]!, help[2]!);
      continue;
    }
    if (type) {
      assert.ok(!parsed.types.has(type[1]!), `one TYPE for ${type[1]}`);
      if (current !== undefined) closed.add(current);
      current = type[1]!;
      parsed.types.set(type[1]!, type[2]!);
      continue;
    }
    assert.ok(!line.startsWith("#"), `no other comments: ${line}`);
    const match = SAMPLE.exec(line);
    assert.ok(match, `a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, key, quoted] of (match[2] ?? "").matchAll(LABEL)) {
      assert.ok(!(key! in labels), `label ${key} once in ${line}`);
      labels[key!] = unescapeLabel(quoted!);
    }
    const family = familyOf(match[1]!, parsed.types);
    assert.equal(
      family,
      current,
      `${match[1]} follows its own TYPE line, with its family's samples together`,
    );
    assert.ok(!closed.has(family), `${family}'s samples are together`);
    const key = `${match[1]}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!series.has(key), `one sample per series: ${line}`);
    series.add(key);
    const raw = match[3]!;
    const value = raw === "+Inf" || raw === "Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    parsed.samples.push({ name: match[1]!, labels, value });
  }
  for (const name of parsed.types.keys()) assert.ok(parsed.help.has(name), `${name} has a HELP line`);
  checkHistograms(parsed);
  return parsed;
}

/** Every histogram series: buckets ascending in `le`, counts never falling, +Inf last, `_count` equal to it. */
function checkHistograms(parsed: Parsed): void {
  for (const [family, type] of parsed.types) {
    if (type !== "histogram") continue;
    const bySeries = new Map<string, Sample[]>();
    for (const s of parsed.samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      assert.ok(le !== undefined, `${family}_bucket has le`);
      const key = JSON.stringify(Object.entries(rest).sort());
      bySeries.set(key, [...(bySeries.get(key) ?? []), s]);
    }
    for (const [key, buckets] of bySeries) {
      const les = buckets.map((b) => b.labels.le === "+Inf" ? Infinity : Number(b.labels.le));
      assert.deepEqual(les, [...les].sort((a, b) => a - b), `${family} ${key}: le ascending`);
      assert.equal(les.at(-1), Infinity, `${family} ${key}: ends with +Inf`);
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${family} ${key}: cumulative`);
      }
      const labels = JSON.parse(key) as [string, string][];
      const of = (name: string) =>
        parsed.samples.filter((s) =>
          s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(labels)
        );
      assert.equal(of(`${family}_count`).length, 1, `${family} ${key}: one _count`);
      assert.equal(of(`${family}_sum`).length, 1, `${family} ${key}: one _sum`);
      assert.equal(of(`${family}_count`)[0]!.value, buckets.at(-1)!.value, `${family} ${key}: _count = +Inf`);
    }
  }
}

export function valueOf(parsed: Parsed, name: string, labels: Record<string, string>): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return parsed.samples.find((s) =>
    s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want
  )
    ?.value;
}

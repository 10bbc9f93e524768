import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy } from "../mod.ts";
import { resolveRetryPolicy } from "../src/retry.ts";

const half = () => 0.5;
const lowest = () => 0;
/** The largest number below 1, the highest a `Math.random` can return. */
const highest = () => 1 - Number.EPSILON / 2;

describe("backoffDelayMs", () => {
  test("the default policy is 1 s, doubling, capped at 300 s, with ±10 % jitter", () => {
    assert.deepEqual({ ...DEFAULT_RETRY_POLICY }, {
      initialDelayMs: 1000,
      multiplier: 2,
      maxDelayMs: 300_000,
      jitter: 0.1,
    });
    assert.ok(Object.isFrozen(DEFAULT_RETRY_POLICY));
  });

  test("with random fixed at 0.5 the delay is exactly initialDelayMs × multiplier^(attempt − 1)", () => {
    const delays = Array.from({ length: 9 }, (_, i) => backoffDelayMs(DEFAULT_RETRY_POLICY, i + 1, half));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000]);
  });

  test("with random fixed at 0.5 a custom policy grows by its own multiplier", () => {
    const policy: RetryPolicy = { initialDelayMs: 250, multiplier: 3, maxDelayMs: 1_000_000, jitter: 0.5 };
    const delays = [1, 2, 3, 4].map((attempt) => backoffDelayMs(policy, attempt, half));
    assert.deepEqual(delays, [250, 750, 2250, 6750]);
  });

  test("a multiplier of 1 keeps the delay constant", () => {
    const policy: RetryPolicy = { initialDelayMs: 700, multiplier: 1, maxDelayMs: 300_000, jitter: 0 };
    for (const attempt of [1, 2, 10, 1000]) assert.equal(backoffDelayMs(policy, attempt, half), 700);
  });

  test("the delay is capped at maxDelayMs once the growth passes it", () => {
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 10, half), 300_000); // 512 s uncapped
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 20, half), 300_000);
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 5000, half), 300_000); // 2^4999 overflows to Infinity
  });

  test("with random 0 the delay is 10 % below the base", () => {
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 1, lowest), 900);
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 3, lowest), 3600);
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 10, lowest), 270_000);
  });

  test("with random just below 1 the delay is 10 % above the base", () => {
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 1, highest), 1100);
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 3, highest), 4400);
  });

  test("jitter above the base never takes a capped delay over maxDelayMs", () => {
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 10, highest), 300_000);
    assert.equal(backoffDelayMs(DEFAULT_RETRY_POLICY, 9, highest), 281_600); // 256 s + 10 %
    const wide = { ...DEFAULT_RETRY_POLICY, jitter: 0.5 };
    assert.equal(backoffDelayMs(wide, 9, highest), 300_000); // 256 s + 50 % = 384 s, over the cap
  });

  test("a jitter of 0 ignores the random source", () => {
    const policy = { ...DEFAULT_RETRY_POLICY, jitter: 0 };
    for (const random of [lowest, half, highest]) assert.equal(backoffDelayMs(policy, 4, random), 8000);
  });

  test("a jitter of 1 can bring the delay down to 0 but never below", () => {
    const policy = { ...DEFAULT_RETRY_POLICY, jitter: 1 };
    assert.equal(backoffDelayMs(policy, 3, lowest), 0);
    assert.equal(backoffDelayMs(policy, 3, highest), 8000);
  });

  test("a zero initial delay stays 0 for every attempt, even attempt 5000", () => {
    const policy = { ...DEFAULT_RETRY_POLICY, initialDelayMs: 0 };
    for (const attempt of [1, 2, 100, 1075, 5000]) {
      for (const random of [lowest, half, highest]) {
        assert.equal(backoffDelayMs(policy, attempt, random), 0, `attempt ${attempt}`);
      }
    }
  });

  test("a zero maxDelayMs makes every delay 0", () => {
    const policy = { ...DEFAULT_RETRY_POLICY, maxDelayMs: 0 };
    for (const random of [lowest, half, highest]) assert.equal(backoffDelayMs(policy, 3, random), 0);
  });

  test("the delay is rounded to whole milliseconds", () => {
    const policy: RetryPolicy = { initialDelayMs: 333, multiplier: 1.5, maxDelayMs: 300_000, jitter: 0.1 };
    assert.equal(backoffDelayMs(policy, 2, half), 500); // 499.5
    assert.equal(backoffDelayMs(policy, 3, half), 749); // 749.25
    assert.ok(Number.isInteger(backoffDelayMs(policy, 2, () => 0.123)));
  });

  test("Math.random is used when no random source is given, and stays within the bounds", () => {
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelayMs(DEFAULT_RETRY_POLICY, 2);
      assert.ok(delay >= 1800 && delay <= 2200, `${delay}`);
    }
  });
});

describe("resolveRetryPolicy", () => {
  test("with no options it gives the default policy", () => {
    assert.deepEqual(resolveRetryPolicy(), { ...DEFAULT_RETRY_POLICY });
    assert.deepEqual(resolveRetryPolicy({}), { ...DEFAULT_RETRY_POLICY });
  });

  test("the policy it gives is a new object, not the frozen default", () => {
    const policy = resolveRetryPolicy();
    assert.notEqual(policy, DEFAULT_RETRY_POLICY);
    policy.initialDelayMs = 5;
    assert.equal(DEFAULT_RETRY_POLICY.initialDelayMs, 1000);
  });

  test("options given replace their defaults and leave the others", () => {
    assert.deepEqual(resolveRetryPolicy({ initialDelayMs: 50, jitter: 0 }), {
      initialDelayMs: 50,
      multiplier: 2,
      maxDelayMs: 300_000,
      jitter: 0,
    });
  });

  test("options set to undefined keep their defaults", () => {
    assert.deepEqual(
      resolveRetryPolicy({
        initialDelayMs: undefined,
        multiplier: undefined,
        maxDelayMs: 10,
        jitter: undefined,
      }),
      { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 10, jitter: 0.1 },
    );
  });

  test("the boundary values 0, 1 and 0..1 are accepted", () => {
    assert.deepEqual(resolveRetryPolicy({ initialDelayMs: 0, multiplier: 1, maxDelayMs: 0, jitter: 1 }), {
      initialDelayMs: 0,
      multiplier: 1,
      maxDelayMs: 0,
      jitter: 1,
    });
    assert.equal(resolveRetryPolicy({ jitter: 0 }).jitter, 0);
  });

  const delay = "a number of milliseconds from 0 to 3153600000000";
  const bad: [keyof RetryPolicy, number, string][] = [
    ["initialDelayMs", -1, delay],
    ["initialDelayMs", Number.NaN, delay],
    ["initialDelayMs", Infinity, delay],
    ["initialDelayMs", 3153600000001, delay],
    ["multiplier", 0.5, "a number ≥ 1"],
    ["multiplier", 0, "a number ≥ 1"],
    ["multiplier", Number.NaN, "a number ≥ 1"],
    ["multiplier", Infinity, "a number ≥ 1"],
    ["maxDelayMs", -0.001, delay],
    ["maxDelayMs", Infinity, delay],
    ["jitter", -0.1, "between 0 and 1"],
    ["jitter", 1.01, "between 0 and 1"],
    ["jitter", Number.NaN, "between 0 and 1"],
  ];
  for (const [name, value, rule] of bad) {
    test(`retry.${name} = ${value} is refused with a RangeError naming the option, the rule and the value`, () => {
      assert.throws(() => resolveRetryPolicy({ [name]: value }), {
        name: "RangeError",
        message: `retry.${name} must be ${rule}, got ${value}.`,
      });
    });
  }

  test("a value that is not a number is refused with a RangeError", () => {
    assert.throws(() => resolveRetryPolicy({ initialDelayMs: "1000" as unknown as number }), RangeError);
    assert.throws(() => resolveRetryPolicy({ jitter: null as unknown as number }), RangeError);
  });
});

describe("backoffDelayMs properties", () => {
  /** Policies as resolveRetryPolicy accepts them, with whole-millisecond delays. */
  const policyArb: fc.Arbitrary<RetryPolicy> = fc.record({
    initialDelayMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 10_000_000 })),
    multiplier: fc.oneof(fc.constant(1), fc.constant(2), fc.double({ min: 1, max: 100, noNaN: true })),
    maxDelayMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 100_000_000 })),
    jitter: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
  });
  const attemptArb = fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 100_000 }));
  /** Values a `Math.random` can return: [0, 1). */
  const randomArb = fc.oneof(
    fc.constant(0),
    fc.constant(0.5),
    fc.constant(1 - Number.EPSILON / 2),
    fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  );

  /** The delay before jitter, computed independently of the implementation. */
  function expectedBase(policy: RetryPolicy, attempt: number): number {
    if (policy.initialDelayMs === 0) return 0;
    return Math.min(policy.initialDelayMs * Math.pow(policy.multiplier, attempt - 1), policy.maxDelayMs);
  }

  test("every delay is a whole number between 0 and maxDelayMs", () => {
    fc.assert(
      fc.property(policyArb, attemptArb, randomArb, (policy, attempt, r) => {
        const delay = backoffDelayMs(policy, attempt, () => r);
        assert.ok(Number.isInteger(delay), `not whole: ${delay}`);
        assert.ok(delay >= 0, `negative: ${delay}`);
        assert.ok(delay <= policy.maxDelayMs, `${delay} > max ${policy.maxDelayMs}`);
      }),
      { numRuns: 2000 },
    );
  });

  test("every delay lies within ±jitter of the capped base, give or take rounding", () => {
    fc.assert(
      fc.property(policyArb, attemptArb, randomArb, (policy, attempt, r) => {
        const delay = backoffDelayMs(policy, attempt, () => r);
        const base = expectedBase(policy, attempt);
        const slack = 0.5 + base * 1e-12;
        assert.ok(delay >= base * (1 - policy.jitter) - slack, `${delay} below ${base} − ${policy.jitter}`);
        assert.ok(delay <= base * (1 + policy.jitter) + slack, `${delay} above ${base} + ${policy.jitter}`);
      }),
      { numRuns: 2000 },
    );
  });

  test("with random at 0.5 the delay is the rounded capped base and never shrinks as attempts grow", () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 2000 }), (policy, attempt) => {
        const delay = backoffDelayMs(policy, attempt, half);
        const next = backoffDelayMs(policy, attempt + 1, half);
        assert.equal(delay, Math.min(Math.round(expectedBase(policy, attempt)), policy.maxDelayMs));
        assert.ok(next >= delay, `attempt ${attempt + 1} waits ${next} < ${delay}`);
      }),
      { numRuns: 2000 },
    );
  });

  test("a higher random never gives a shorter delay", () => {
    fc.assert(
      fc.property(policyArb, attemptArb, randomArb, randomArb, (policy, attempt, a, b) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        assert.ok(backoffDelayMs(policy, attempt, () => low) <= backoffDelayMs(policy, attempt, () => high));
      }),
      { numRuns: 1000 },
    );
  });

  test("a zero initial delay gives 0 whatever the policy, attempt and random", () => {
    fc.assert(
      fc.property(policyArb, attemptArb, randomArb, (policy, attempt, r) => {
        assert.equal(backoffDelayMs({ ...policy, initialDelayMs: 0 }, attempt, () => r), 0);
      }),
      { numRuns: 1000 },
    );
  });

  test("every policy resolveRetryPolicy accepts gives delays within bounds", () => {
    fc.assert(
      fc.property(policyArb, attemptArb, randomArb, (options, attempt, r) => {
        const policy = resolveRetryPolicy(options);
        const delay = backoffDelayMs(policy, attempt, () => r);
        assert.ok(Number.isInteger(delay) && delay >= 0 && delay <= policy.maxDelayMs);
      }),
      { numRuns: 500 },
    );
  });
});

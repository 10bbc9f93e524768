/**
 * Strict ISO-8601 times: a date, a time and a zone. A time without a zone would mean a
 * different instant on every machine, and `Date.parse` quietly rolls impossible dates (February 30th)
 * into real ones, so both are refused here.
 *
 * @module
 */

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2}))$/;

/** Epoch milliseconds of a time like `2030-01-31T09:00Z` or `2030-01-31T10:00:00.5+01:00`; NaN otherwise. */
export function parseIsoTime(text: string): number {
  const match = ISO.exec(text);
  if (!match) return NaN;
  const [, year, month, day, hour, minute, second = "0", , offsetHours = "0", offsetMinutes = "0"] = match;
  const daysInMonth = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
  const fits = Number(month) >= 1 && Number(month) <= 12 && Number(day) >= 1 && Number(day) <= daysInMonth &&
    Number(hour) <= 23 && Number(minute) <= 59 && Number(second) <= 59 && Number(offsetHours) <= 23 &&
    Number(offsetMinutes) <= 59;
  return fits ? Date.parse(text) : NaN;
}

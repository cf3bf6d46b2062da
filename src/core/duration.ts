/**
 * Duration is a span of time: a number of seconds, or a string of digits and
 * one unit, `s`, `m`, `h` or `d` (`"30s"`, `"15m"`, `"1h"`).
 */
export type Duration = number | `${bigint}${"s" | "m" | "h" | "d"}`;

const units = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/**
 * parseDuration turns a {@link Duration} into seconds, and throws a `TypeError`
 * naming the option for anything else. `undefined` stays `undefined`.
 */
export function parseDuration(value: Duration | undefined, option: string): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) {
      return value;
    }
  } else if (typeof value === "string") {
    const match = /^(\d+)(s|m|h|d)$/.exec(value);
    if (match !== null) {
      return Number(match[1]) * units[match[2] as keyof typeof units];
    }
  }
  throw new TypeError(
    `${option} must be seconds (a number >= 0) or a string like "30s", "15m", "1h"`,
  );
}

import { Code } from "@connectrpc/connect";

/**
 * Whether `value` is a member of Connect's `Code` enum. The enum maps names to
 * numbers and back, so `Object.values(Code)` also holds the names: a string
 * such as `"Unauthenticated"` would pass such a check and reach the wire as
 * `Unknown`.
 */
export function isCode(value: unknown): value is Code {
  return typeof value === "number" && typeof Code[value] === "string";
}

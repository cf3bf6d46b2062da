/**
 * Every option of an options type, one `true` per key. The record's type
 * names each key of `T`, so the compiler refuses a list that forgets an option
 * added to the type later, or names one the type does not have.
 */
export type OptionNames<T> = { readonly [K in keyof Required<T>]: true };

/** The names of an {@link OptionNames} record, as a list. */
export function namesOf<T>(names: OptionNames<T>): readonly (keyof T & string)[] {
  return Object.keys(names) as (keyof T & string)[];
}

/**
 * Throws a `TypeError` for the first key of `options` that is not in `known`,
 * naming the known option closest to it: a misspelt option (`publicMethod`)
 * would otherwise be ignored, and with it the protection it asked for.
 */
export function assertKnownOptions(options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const closest = closestName(key, known);
      const hint = closest === undefined ? "" : `; did you mean \`${closest}\`?`;
      throw new TypeError(`unknown option \`${key}\`${hint}`);
    }
  }
}

/** The options among `names` that `options` gives a value other than `undefined`. */
export function definedOptions<T extends object>(
  options: T,
  names: readonly (keyof T & string)[],
): Partial<T> {
  const defined: Partial<T> = {};
  for (const name of names) {
    if (options[name] !== undefined) {
      defined[name] = options[name];
    }
  }
  return defined;
}

/**
 * inOptionsOf runs `check` and puts `context` before the message of a
 * `TypeError` it throws: `createJwtAuth: issuers[1]: secret is empty`. The
 * checks below it name only the option they check, and each factory (and
 * each entry of a list) says where once.
 */
export function inOptionsOf<T>(context: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof TypeError) {
      throw new TypeError(`${context}: ${err.message}`, { cause: err.cause });
    }
    throw err;
  }
}

/** The known name nearest to `name` in edits, when it is near enough to be a slip. */
function closestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

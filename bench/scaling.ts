// How a call's cost grows with the work around it (micro.ts): each row is one
// kind of call made with two or three sizes of one thing around it (methods
// with rules, issuers, keys, cached tokens). The sizes of a row take turns in
// rounds, each size a batch of calls timed as one; a size's ratio is taken
// within a round, against the row's smallest size, and summarised over the
// rounds, so that the machine's other work moves both sides of a ratio alike.
import { formatSpread, type Spread, spread } from "./stats.js";

/** A call to measure: the `i`-th of a run; it cycles over its own inputs. */
export type Call = (i: number) => Promise<unknown>;

/** One row of the table: the same call with each size of what surrounds it. */
export interface ScalingRow {
  /** What grows, e.g. "methods with rules (request gate)". */
  readonly around: string;
  /** The call, e.g. "cache hit". */
  readonly call: string;
  readonly sizes: readonly number[];
  readonly calls: readonly Call[];
  /** Why the row cannot be flat, when a size exceeds the bar and the cause is known. */
  readonly reason?: string;
}

export interface ScalingResult {
  readonly around: string;
  readonly call: string;
  readonly sizes: readonly number[];
  /** µs per call, per size. */
  readonly us: readonly Spread[];
  /** µs per call ÷ the smallest size's in the same round, per size. */
  readonly ratios: readonly Spread[];
  readonly reason?: string;
}

/** A row is flat when no size costs more than this × its smallest size (median ratio). */
export const flatBar = 1.1;

/** refused wraps a call that must be refused: a call that resolves is a mistake in the setup. */
export function refused(call: Call): Call {
  return async (i) => {
    try {
      await call(i);
    } catch {
      return;
    }
    throw new Error("expected a refusal");
  };
}

async function batch(call: Call, calls: number, first: number): Promise<number> {
  const started = performance.now();
  for (let n = 0; n < calls; n++) {
    await call(first + n);
  }
  return ((performance.now() - started) * 1000) / calls;
}

/**
 * measureRow times a row: a batch per size per round, each batch about
 * `batchMs` long (sized on the smallest size), after one unmeasured batch per
 * size.
 */
export async function measureRow(
  row: ScalingRow,
  rounds: number,
  batchMs: number,
): Promise<ScalingResult> {
  const first = row.calls[0] as Call;
  const probe = await batch(first, 200, 0);
  const calls = Math.max(20, Math.round((batchMs * 1000) / probe));
  const us = row.calls.map((): number[] => []);
  let next = 0;
  for (let round = -1; round < rounds; round++) {
    for (let j = 0; j < row.calls.length; j++) {
      const i = (j + Math.max(0, round)) % row.calls.length;
      const time = await batch(row.calls[i] as Call, calls, next);
      next += calls;
      if (round >= 0) {
        us[i]?.push(time);
      }
    }
  }
  const base = us[0] ?? [];
  return {
    around: row.around,
    call: row.call,
    sizes: row.sizes,
    us: us.map((list) => spread(list)),
    ratios: us.map((list) => spread(list.map((v, r) => v / (base[r] ?? Number.NaN)))),
    ...(row.reason === undefined ? {} : { reason: row.reason }),
  };
}

/** The table, in Markdown. */
export function renderScaling(results: readonly ScalingResult[]): string {
  const lines = [
    `| work around the call | call | µs per call by size, median (÷ the smallest size: median, min–max over rounds) | flat (≤ ${flatBar} ×) |`,
    "|---|---|---|---|",
  ];
  for (const r of results) {
    const cells = r.sizes.map((size, i) => {
      const us = formatSpread({ ...(r.us[i] as Spread), n: 1 }, 2);
      const ratio = i === 0 ? "" : ` (${formatSpread(r.ratios[i] as Spread, 2)})`;
      return `${size.toLocaleString("en-US")}: ${us}${ratio}`;
    });
    const worst = Math.max(...r.ratios.slice(1).map((s) => s.median));
    const verdict =
      worst <= flatBar ? "yes" : `**no** (${worst.toFixed(2)})${r.reason ? `: ${r.reason}` : ""}`;
    lines.push(`| ${r.around} | ${r.call} | ${cells.join(" · ")} | ${verdict} |`);
  }
  return lines.join("\n");
}

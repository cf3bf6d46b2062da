// bench/RESULTS.md: a section of generated tables per tool, each between
// `<!-- begin NAME -->` and `<!-- end NAME -->`, then one hand-written page on
// method and machine that no tool touches. A tool's full run replaces its own
// section and leaves the rest of the file as it is.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { benchDir } from "./processes.js";

export const resultsPath = join(benchDir, "RESULTS.md");

/** The generated sections, in the order the file holds them. */
export const sections = [
  "servers",
  "paired",
  "revocations",
  "edge",
  "cold-steps",
  "micro",
] as const;
export type Section = (typeof sections)[number];

/** The heading of the hand-written page, which stays last. */
const methodHeading = "## Method and machine";

/** writeSection puts `markdown` in place of the section `name` of RESULTS.md. */
export function writeSection(name: Section, markdown: string): void {
  const text = existsSync(resultsPath) ? readFileSync(resultsPath, "utf8") : "";
  const begin = `<!-- begin ${name} -->`;
  const end = `<!-- end ${name} -->`;
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const start = text.indexOf(begin);
  const stop = text.indexOf(end);
  if (start >= 0 && stop > start) {
    writeFileSync(resultsPath, `${text.slice(0, start)}${block}${text.slice(stop + end.length)}`);
    return;
  }
  // A section not there yet goes before the next one that is, or before the method page.
  const after = [
    ...sections.slice(sections.indexOf(name) + 1).map((s) => `<!-- begin ${s} -->`),
    methodHeading,
  ]
    .map((marker) => text.indexOf(marker))
    .filter((at) => at >= 0);
  const at = after.length === 0 ? text.length : Math.min(...after);
  writeFileSync(resultsPath, `${text.slice(0, at)}${block}\n\n${text.slice(at)}`);
}

/** The line under a section's heading: when it ran, and how busy the machine was. */
export function runLine(started: Date, loadBefore: readonly number[]): string {
  const load = (l: readonly number[]) => l.map((v) => v.toFixed(2)).join(" ");
  const minutes = (Date.now() - started.getTime()) / 60_000;
  return `Run on ${started.toISOString().slice(0, 16).replace("T", " ")} UTC, ${minutes.toFixed(1)} min, Node.js ${process.version}; load average before ${load(loadBefore)}, after ${load(loadavg())} (the machine is shared).`;
}

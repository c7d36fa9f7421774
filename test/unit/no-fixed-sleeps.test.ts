// Deterministic tests (issue 16 item 5; docs/contributing.md): a test waits for a signal (an event,
// `flush()`, `waitUntil`, an injected clock), not for a fixed time. A sleep of 100 ms or more with a
// literal duration is allowed only where the real wall clock is the point, and then the line or the
// one above says so with a comment containing "wall clock" (or "a poll": the pause of a loop that
// re-checks a condition until its deadline). Timers that only reject or kill (a deadline that fires
// when a test is failing anyway) are not sleeps. (Shorter pauses are app handlers' simulated work.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const TEST = fileURLToPath(new URL('../', import.meta.url));
const MIN_MS = 100;

/** `setTimeout(callback, N)`, `delay(N)`, `sleep(N)`, `waitForTimeout(N)` with a literal N. */
const SLEEP = /\b(?:setTimeout\((.*?),\s*([\d_]+)\s*\)|(?:delay|sleep|waitForTimeout)\(\s*([\d_]+)\s*\))/g;
/** A timer whose callback rejects or kills is a deadline: it fires only when something already failed. */
const DEADLINE = /\breject\(|\.kill\(|\bthrow\b/;
const WHY = /\/\/.*(?:wall clock|a poll\b)/i;
const SELF = fileURLToPath(import.meta.url);

/** Files other branches still edit when this guard was added (their entries go once merged). */
const KNOWN: Array<{ file: string; branch: string }> = [];

export interface Sleep {
  line: number;
  ms: number;
  text: string;
}

/** The fixed sleeps of at least `MIN_MS` in `text` that no "wall clock" comment explains. */
export function unexplainedSleeps(text: string): Sleep[] {
  const lines = text.split('\n');
  const found: Sleep[] = [];
  lines.forEach((line, i) => {
    for (const m of line.matchAll(SLEEP)) {
      const ms = Number((m[2] ?? m[3])!.replaceAll('_', ''));
      if (ms < MIN_MS || (m[1] !== undefined && DEADLINE.test(m[1]))) continue;
      if (WHY.test(line) || WHY.test(lines[i - 1] ?? '')) continue;
      found.push({ line: i + 1, ms, text: line.trim() });
    }
  });
  return found;
}

function sources(dir = TEST): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    if (d.name === 'node_modules') return [];
    const path = join(dir, d.name);
    if (d.isDirectory()) return sources(path);
    return /\.(c|m)?[jt]s$/.test(d.name) && path !== SELF ? [path] : [];
  });
}

test('the scan finds a fixed sleep of 100 ms or more unless a comment says the wall clock is the point', () => {
  assert.deepEqual(unexplainedSleeps('await delay(1000);').map((s) => s.ms), [1000]);
  assert.deepEqual(unexplainedSleeps('await new Promise((r) => setTimeout(r, 15_000));').map((s) => s.ms), [15000]);
  assert.deepEqual(unexplainedSleeps("await page.waitForTimeout(3000); // let it settle").map((s) => s.ms), [3000], 'a comment without the reason does not count');
  assert.deepEqual(unexplainedSleeps("setTimeout(() => resolve('nothing'), 3000);").map((s) => s.ms), [3000], 'resolving after N ms is a sleep');
  assert.deepEqual(unexplainedSleeps('await sleep(99);'), [], 'under 100 ms (an app handler\'s simulated work)');
  assert.deepEqual(unexplainedSleeps('await sleep(100);').map((s) => s.ms), [100]);
  assert.deepEqual(unexplainedSleeps('await delay(100); // a poll, bounded by the loop'), []);
  assert.deepEqual(unexplainedSleeps('await sleep(HOLD_MS);'), [], 'not a literal');
  assert.deepEqual(unexplainedSleeps("setTimeout(() => reject(new Error('timeout')), 5000);"), [], 'a deadline');
  assert.deepEqual(unexplainedSleeps('await delay(2000); // wall clock: the TTL must really pass'), []);
  assert.deepEqual(unexplainedSleeps('// the wall clock is the point: tickets expire by Date.now()\nawait delay(3500);'), []);
  assert.deepEqual(unexplainedSleeps('const x = 1;\n\nawait delay(1500);').map((s) => s.line), [3]);
});

function findings(files: string[]): string[] {
  return files.flatMap((file) => unexplainedSleeps(readFileSync(file, 'utf8')).map((s) => `${relative(TEST, file)}:${s.line} (${s.ms} ms): ${s.text}`));
}

const isKnown = (file: string) => KNOWN.some((k) => relative(TEST, file) === k.file);

test('no test sleeps 100 ms or more on a fixed time without saying why the wall clock is the point', () => {
  const found = findings(sources().filter((file) => !isKnown(file)));
  assert.deepEqual(found, [], `wait for a signal (an event, flush(), waitUntil, an injected clock) instead, or add a "// wall clock: why" comment:\n${found.join('\n')}`);
});

for (const k of KNOWN) {
  test(`${k.file} (branch ${k.branch}) has no unexplained fixed sleep`, { todo: `branch ${k.branch} owns this file` }, () => {
    assert.deepEqual(findings([join(TEST, k.file)]), []);
  });
}

// `npm test`'s runner (test/run.ts; docs/contributing.md, "Tests"): its scheduling, with jobs that
// only take a few milliseconds instead of test files. Two slots stay busy while work is left, and
// never two browser files at once (their timing assertions would then measure the machine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failureDigest, schedule, type Done, type Job } from '../run.js';

const job = (name: string, browser: boolean, ms: number, alone = false, light = false): Job => ({ name, args: [], browser, alone, light, weight: ms });

/** Runs `queue` on two slots with jobs that take `weight` ms; records what ran beside what. */
async function trace(queue: Job[]) {
  let running: Job[] = [];
  const beside: string[][] = [];
  const run = async (j: Job): Promise<Done> => {
    running.push(j);
    beside.push(running.map((r) => r.name).sort());
    await new Promise((resolve) => setTimeout(resolve, j.weight));
    running = running.filter((r) => r !== j);
    return { job: j, ok: !j.name.startsWith('fail'), seconds: j.weight / 1000, output: '' };
  };
  const reported: string[] = [];
  const results = await schedule([...queue], 2, run, (done) => reported.push(done.job.name));
  return { beside, reported, results };
}

test('two slots: a browser file runs beside other files, never beside another browser file; every job runs once and is reported', async () => {
  const queue = [job('browser-a', true, 60), job('browser-b', true, 40), job('unit-1', false, 10), job('unit-2', false, 10), job('unit-3', false, 10), job('fail-4', false, 10)];
  const { beside, reported, results } = await trace(queue);
  assert.deepEqual(reported.slice().sort(), queue.map((j) => j.name).sort(), 'each job once');
  assert.deepEqual(results.map((r) => r.job.name).sort(), reported.slice().sort());
  assert.equal(results.find((r) => r.job.name === 'fail-4')?.ok, false, 'a failure is kept in the results');
  for (const names of beside) {
    assert.ok(names.length <= 2, `at most two at once: ${names}`);
    assert.ok(names.filter((n) => n.startsWith('browser')).length <= 1, `never two browser files at once: ${names}`);
  }
  assert.ok(beside.some((names) => names.includes('browser-a') && names.some((n) => n.startsWith('unit'))), 'the other slot works while a browser file runs');
});

test('when only browser files are left, the free slot waits for the running one, then takes the next', async () => {
  const queue = [job('browser-a', true, 30), job('browser-b', true, 30), job('browser-c', true, 30)];
  const { beside, reported } = await trace(queue);
  assert.deepEqual(reported, ['browser-a', 'browser-b', 'browser-c'], 'one after another, in queue order');
  assert.ok(beside.every((names) => names.length === 1), `one at a time: ${JSON.stringify(beside)}`);
});

test('a file that must run alone has nothing beside it, and the others still share both slots', async () => {
  const queue = [job('browser-alone', true, 40, true), job('browser-b', true, 30), job('unit-1', false, 30), job('unit-2', false, 10), job('unit-3', false, 10)];
  const { beside, reported } = await trace(queue);
  assert.equal(reported[0], 'browser-alone', 'it ran first, on its own');
  for (const names of beside) if (names.includes('browser-alone')) assert.deepEqual(names, ['browser-alone'], `nothing beside it: ${names}`);
  assert.ok(beside.some((names) => names.length === 2), 'the rest use both slots');
  assert.equal(reported.length, queue.length);
});

test('beside a file that must run alone, only a light file (one at a time, never a browser one) runs; the alone files still run first, and the rest share both slots after them', async () => {
  const queue = [
    job('browser-alone-1', true, 60, true),
    job('browser-alone-2', true, 60, true),
    job('light-1', false, 50, false, true),
    job('light-2', false, 40, false, true),
    job('browser-light', true, 10, false, true),
    job('unit-1', false, 30),
    job('unit-2', false, 10),
    job('browser-b', true, 10),
  ];
  const { beside, reported } = await trace(queue);
  assert.equal(reported.length, queue.length, 'each job once');
  assert.ok(reported.indexOf('browser-alone-2') < reported.indexOf('unit-1'), `the alone files before the others: ${reported}`);
  for (const names of beside) {
    if (!names.some((n) => n.includes('alone'))) continue;
    assert.ok(names.length <= 2, `${names}`);
    const other = names.find((n) => !n.includes('alone'));
    assert.ok(other === undefined || other.startsWith('light-'), `only a light, non-browser file beside an alone one: ${names}`);
  }
  assert.ok(beside.some((names) => names.includes('browser-alone-1') && names.includes('light-1')), `a light file used the slot the alone file leaves: ${JSON.stringify(beside)}`);
  assert.ok(beside.some((names) => names.includes('browser-alone-2') && names.includes('light-2')), `and beside the next alone file: ${JSON.stringify(beside)}`);
  assert.ok(beside.some((names) => names.length === 2 && !names.some((n) => n.includes('alone'))), 'the rest use both slots');
});

test('three slots: beside a file that must run alone, still one light file at a time', async () => {
  const queue = [job('browser-alone', true, 60, true), job('light-1', false, 20, false, true), job('light-2', false, 20, false, true), job('light-3', false, 20, false, true), job('unit-1', false, 10)];
  let running: string[] = [];
  const beside: string[][] = [];
  const run = async (j: Job): Promise<Done> => {
    running.push(j.name);
    beside.push([...running].sort());
    await new Promise((resolve) => setTimeout(resolve, j.weight));
    running = running.filter((r) => r !== j.name);
    return { job: j, ok: true, seconds: j.weight / 1000, output: '' };
  };
  await schedule([...queue], 3, run, () => {});
  for (const names of beside) if (names.includes('browser-alone')) assert.ok(names.length <= 2, `one light file at most beside it: ${names}`);
  assert.equal(beside.length, queue.length);
});

test('the digest printed at the end of a run names each failed test of a real `node --test` run, with its error and its line; a passing one is left out', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sio-sessions-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dirTest = join(dir, 'test');
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  mkdirSync(dirTest);
  const file = join(dirTest, 'sample.test.ts');
  writeFileSync(
    file,
    [
      "import { test } from 'node:test';",
      "import assert from 'node:assert/strict';",
      "test('passes', () => {});",
      "test('compares', () => {",
      '  assert.deepEqual({ counter: 1 }, { counter: 2 });',
      '});',
      "test('throws', () => { throw new Error('the store hung'); });",
    ].join('\n'),
  );
  // As test/run.ts runs a file, not as a test inside this one (node:test marks its child processes by NODE_TEST_CONTEXT).
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', file], { encoding: 'utf8', env });
  assert.equal(run.status, 1, run.stdout + run.stderr);
  const digest = failureDigest(run.stdout + '\nkilled: still running after 300 s (TEST_JOB_TIMEOUT_MS)\n');
  const text = digest.join('\n');
  assert.ok(!text.includes('passes'), text);
  assert.equal(digest.filter((l) => l.startsWith('not ok - ')).length, 2, text);
  assert.match(text, /not ok - compares\n {4}error: .*\n(?: {4}.*\n)*? {4}.*counter: 1/);
  assert.match(text, /sample\.test\.ts:5:\d+/);
  assert.match(text, /not ok - throws\n {4}error: 'the store hung'\n {4}at test\/sample\.test\.ts:7:\d+/);
  assert.equal(digest.at(-1), 'killed; the last test to report was: not ok - throws');
});

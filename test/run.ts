/**
 * `npm test`'s runner (docs/contributing.md, "Tests"): the type-check and every test file, two at a
 * time, so both cores work. Each file is its own `node --import tsx --test <file>` (as when run by
 * hand); its output is held until it ends and printed in one piece under a header, so two files'
 * lines never interleave. Files that drive a browser run one at a time (two browsers at once on two
 * cores would make their timing assertions a test of the machine); the other slot takes the rest.
 * The files in ALONE run first, with nothing beside them but the LIGHT files (which mostly wait).
 * Longest first (the last run's times, kept in node_modules/.cache; else the file's size), so the
 * run does not end with one long file alone. Exit code 1 when anything failed.
 *
 *   node --import tsx test/run.ts [files...]     TEST_SLOTS=1 runs one at a time
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SUITES = ['unit', 'integration', 'adversarial', 'packaging', 'browser'];
const TIMES = join(ROOT, 'node_modules', '.cache', 'socket.io-sessions', 'test-times.json');
/** A file that imports one of these drives a real browser. */
const BROWSER = /helpers\/(?:browser|engines)\.js|from 'playwright-core'|from 'puppeteer-core'/;
const TYPECHECK = 'typecheck (tsc --noEmit -p tsconfig.json)';
/**
 * The type-check is incremental (tsc keeps what it learnt of each file here, beside the times): only
 * the files changed since the last run, and those that depend on them, are checked again; the errors
 * of the others are kept from that run (a file with an error fails every run until it is fixed). About
 * 6 s instead of 30 s on this machine when little changed; the same run as before with no cache (CI).
 */
const TSBUILDINFO = join(ROOT, 'node_modules', '.cache', 'socket.io-sessions', 'tsc.tsbuildinfo');
/**
 * Run with nothing beside them: they assert a hand-over between tabs within 1 s (the contract) while
 * driving several browser processes, which on two cores already use both (seen at 1,089-1,388 ms
 * with another file beside them on a loaded machine).
 */
const ALONE = ['test/browser/engines.test.ts', 'test/browser/tabs.test.ts'];
/**
 * Files that mostly wait (on timers, store latency, Redis), a fraction of one core: they may run beside
 * an ALONE file, one at a time, in the slot it would leave idle (about 100 s of a run). CPU over wall
 * time, each alone on the idle machine: invariants.property 9.7 s / 41.7 s, hostile-inputs 5.4 s / 17 s,
 * destroy-races 4.2 s / 15.3 s, integration/tickets 3.2 s / 15.7 s (the slot still idled ~50 s of a run without the last two).
 * No browser file and nothing heavy: the ALONE files' hand-over within 1 s was checked with these beside
 * them (the commit that added LIGHT). redis.test.ts was one too, until a test of it hung beside engines
 * (the file killed at 300 s in a full run): its cross-node timings are not for a loaded machine.
 */
const LIGHT = ['test/adversarial/invariants.property.test.ts', 'test/adversarial/hostile-inputs.test.ts', 'test/adversarial/destroy-races.test.ts', 'test/integration/tickets.test.ts'];

export interface Job {
  name: string;
  args: string[];
  browser: boolean;
  /** Runs with no other job beside it (but a `light` one). */
  alone: boolean;
  /** Mostly waits: may run beside an `alone` job. */
  light?: boolean;
  /** Expected seconds (or a stand-in for them): longest first. */
  weight: number;
}

export interface Done {
  job: Job;
  ok: boolean;
  seconds: number;
  output: string;
}

function testFiles(): string[] {
  return SUITES.flatMap((suite) =>
    readdirSync(join(ROOT, 'test', suite))
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => `test/${suite}/${f}`),
  );
}

function readTimes(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(TIMES, 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

/** The jobs, longest first; with a full run, the type-check first of all (it is long, and it used to run before everything). */
function jobs(files: string[], typecheck: boolean): Job[] {
  const times = readTimes();
  // Without a previous run, 10 KB of test file stands for about 10 s of test.
  const weight = (file: string) => times[file] ?? statSync(join(ROOT, file)).size / 1000;
  const tests = files.map((file) => ({
    name: file,
    args: ['--import', 'tsx', '--test', ...(process.stdout.isTTY ? ['--test-reporter=spec'] : []), file],
    browser: BROWSER.test(readFileSync(join(ROOT, file), 'utf8')),
    alone: ALONE.includes(file),
    light: LIGHT.includes(file),
    weight: weight(file),
  }));
  const tsc = {
    name: TYPECHECK,
    args: [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', TSBUILDINFO],
    browser: false,
    alone: false,
    weight: Infinity,
  };
  return [...(typecheck ? [tsc] : []), ...tests].sort((a, b) => Number(b.alone) - Number(a.alone) || b.weight - a.weight);
}

/**
 * Longest a job may run (TEST_JOB_TIMEOUT_MS; the slowest file takes about 80 s): a file that hangs
 * (a failed test whose servers keep its process alive, say) is killed and fails, instead of holding
 * the run, and CI, until CI's own limit.
 */
const JOB_TIMEOUT_MS = Number(process.env.TEST_JOB_TIMEOUT_MS) || 5 * 60_000;

/** Runs one job with its output held; never rejects. */
function runJob(job: Job): Promise<Done> {
  const started = performance.now();
  return new Promise((resolve) => {
    // Its own process group (detached), so that a kill reaches the test file's process under `node --test` too.
    const child = spawn(process.execPath, job.args, { cwd: ROOT, detached: true, env: { ...process.env, ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : {}) } });
    running.add(child);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killJob(child, 'SIGTERM');
      setTimeout(() => killJob(child, 'SIGKILL'), 5000).unref(); // (a deadline on the wall clock: a job that ignores SIGTERM)
    }, JOB_TIMEOUT_MS);
    const end = (ok: boolean, extra = '') => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ job, ok, seconds: (performance.now() - started) / 1000, output: Buffer.concat(chunks).toString() + extra });
    };
    child.on('error', (err) => end(false, `\n${err.stack}\n`));
    child.on('close', (code, signal) => {
      if (timedOut) return end(false, `\nkilled: still running after ${JOB_TIMEOUT_MS / 1000} s (TEST_JOB_TIMEOUT_MS)\n`);
      end(code === 0, code === 0 ? '' : `\nexited with ${signal ?? `code ${code}`}\n`);
    });
  });
}

const running = new Set<ReturnType<typeof spawn>>();

/**
 * `signal` to a job's whole process group: `node --test` runs the file in a process of its own,
 * which a SIGKILL of `node --test` alone would leave running (with the servers it started).
 */
function killJob(child: ReturnType<typeof spawn>, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    child.kill(signal); // the group is gone already
  }
}

/**
 * Takes the next job a free slot may run: no second browser file while one runs, nothing beside an
 * ALONE file but a light one (not a browser file), and an ALONE file only beside light ones.
 */
function take(queue: Job[], running: Job[]): Job | undefined {
  const browserBusy = running.some((r) => r.browser);
  const lights = running.filter((r) => r.light).length;
  const aloneBusy = running.some((r) => r.alone);
  const may = (job: Job) => {
    if (job.browser && browserBusy) return false;
    // Beside an ALONE file: one light file, not a browser one.
    if (aloneBusy) return !!job.light && !job.browser && lights === 0;
    // An ALONE file: beside nothing, or beside one light file.
    if (job.alone) return running.length === lights && lights <= 1;
    return true;
  };
  const i = queue.findIndex(may);
  return i < 0 ? undefined : queue.splice(i, 1)[0];
}

/** Runs the queue (emptied) on `slots` slots with `run`; `report` sees each job as it ends. */
export async function schedule(queue: Job[], slots: number, run: (job: Job) => Promise<Done>, report: (done: Done) => void): Promise<Done[]> {
  const results: Done[] = [];
  const running: Job[] = [];
  const wake = new Set<() => void>();
  const slot = async () => {
    for (;;) {
      const job = take(queue, running);
      if (!job && queue.length === 0) return;
      // What is left may not run beside what runs now: wait for a job to end.
      if (!job) await new Promise<void>((resolve) => wake.add(resolve));
      if (!job) continue;
      running.push(job);
      const done = await run(job);
      running.splice(running.indexOf(job), 1);
      results.push(done);
      report(done);
      for (const resolve of wake) resolve();
      wake.clear();
    }
  };
  await Promise.all(Array.from({ length: slots }, slot));
  return results;
}

const COUNTS = /^(?:# |ℹ )(tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm;

function counts(results: Done[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const { output } of results) for (const [, key, n] of output.matchAll(COUNTS)) total[key!] = (total[key!] ?? 0) + Number(n);
  return total;
}

function header(done: Done): string {
  const rule = '─'.repeat(8);
  return `\n${rule} ${done.job.name}: ${done.ok ? 'ok' : 'FAILED'} (${done.seconds.toFixed(1)} s) ${rule}\n`;
}

/**
 * What failed in a job, in a few lines: each `not ok` with its error's first lines and where in a
 * test file it was thrown, and the last test that reported (a job killed for running too long hangs
 * in the test after it: node's TAP output names a test only once it ended). Printed again at the end
 * of the run, so that a log cut to its tail (CI's) still says what failed.
 */
export function failureDigest(output: string): string[] {
  const lines = output.split('\n');
  const digest: string[] = [];
  let last: string | undefined;
  lines.forEach((line, i) => {
    const result = /^(\s*)(not ok|ok) \d+ - (.*?)(?: # (?:SKIP|TODO).*)?$/.exec(line);
    if (!result) return;
    last = `${result[1]}${result[2]} - ${result[3]}`;
    if (result[2] === 'ok') return;
    digest.push(last);
    // Its YAML block, up to its `...`: the error (possibly over several lines) and its first frame in a test file.
    let inError = false;
    let framed = false;
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.$/.test(lines[j]!); j++) {
      const field = /^\s*(\w+):/.exec(lines[j]!)?.[1];
      if (field) inError = field === 'error' || field === 'expected' || field === 'actual';
      const frame = field === 'location' || framed ? null : /test\/[\w/.-]+\.ts:\d+:\d+/.exec(lines[j]!);
      if (inError) digest.push(`    ${lines[j]!.trim()}`.slice(0, 300));
      else if (frame) (framed = true), digest.push(`    at ${frame[0]}`);
    }
  });
  if (/^killed: /m.test(output)) digest.push(`killed; the last test to report was: ${last?.trim() ?? '(none)'}`);
  return digest.slice(0, 60);
}

function summary(results: Done[], wall: number): string {
  const failed = results.filter((r) => !r.ok);
  const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 10);
  const total = Object.entries(counts(results)).map(([key, n]) => `${key} ${n}`).join(', ');
  return [
    `\n${'═'.repeat(8)} ${results.length} jobs in ${wall.toFixed(1)} s wall: ${total}`,
    'slowest: ' + slowest.map((r) => `${r.job.name} ${r.seconds.toFixed(1)} s`).join(', '),
    failed.length ? `FAILED (their output is above, under each header):\n${failed.map((r) => [`  ${r.job.name}`, ...failureDigest(r.output).map((l) => `    ${l}`)].join('\n')).join('\n')}` : 'all passed',
    '',
  ].join('\n');
}

/** Keeps this run's times, beside earlier runs' times of other files, for the next run's order. */
function saveTimes(results: Done[]): void {
  const times = { ...readTimes(), ...Object.fromEntries(results.filter((r) => r.ok).map((r) => [r.job.name, Math.round(r.seconds * 10) / 10])) };
  mkdirSync(dirname(TIMES), { recursive: true });
  writeFileSync(TIMES, JSON.stringify(times, null, 1));
}

async function main(): Promise<void> {
  const named = process.argv.slice(2).map((file) => relative(ROOT, join(process.cwd(), file)));
  const files = named.length > 0 ? named : testFiles();
  const missing = files.find((file) => !existsSync(join(ROOT, file)));
  if (missing) throw new Error(`no such test file: ${missing}`);
  const slots = Math.max(1, Number(process.env.TEST_SLOTS) || 2);
  mkdirSync(dirname(TSBUILDINFO), { recursive: true });
  const started = performance.now();
  const results = await schedule(jobs(files, named.length === 0), slots, runJob, (done) => process.stdout.write(header(done) + done.output));
  process.stdout.write(summary(results, (performance.now() - started) / 1000));
  saveTimes(results);
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      for (const child of running) killJob(child, signal);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  await main();
}

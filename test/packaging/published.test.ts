/**
 * The package as npm publishes it: `npm pack` of the built package, linted with publint and
 * @arethetypeswrong/cli, then installed into a new project that uses both entry points from
 * Node, with `import` and with `require()`, for a real session handshake and event
 * (test/fixtures/consumer/). Needs `npm run build` first, as `npm test` does; packs with
 * --ignore-scripts so it tests that build instead of making another.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONSUMER = join(ROOT, 'test/fixtures/consumer');
const BIN = join(ROOT, 'node_modules/.bin');

let work: string;
let tarball: string;

/** Runs a command; on failure the error carries its output, so the test report shows why. */
async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
    return stdout;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: err });
  }
}

const versionOf = (pkg: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'socket.io-sessions-pack-'));
  await sh('npm', ['pack', '--ignore-scripts', '--pack-destination', work], ROOT);
  const packed = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(packed, 'npm pack wrote no tarball');
  tarball = join(work, packed);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('publint reports no problem in the tarball (errors, warnings or suggestions)', async () => {
  const { publint } = await import('publint');
  const { formatMessage } = await import('publint/utils');
  const buffer = readFileSync(tarball);
  const { messages, pkg } = await publint({ pack: { tarball: buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) }, level: 'suggestion' });
  assert.deepEqual(
    messages.map((m) => `${m.type}: ${formatMessage(m, pkg) ?? m.code}`),
    [],
  );
});

test('@arethetypeswrong/cli reports no problem for any entry point (node10, node16 from CJS and ESM, bundler)', async () => {
  const table = await sh(join(BIN, 'attw'), [tarball, '--format', 'table-flipped', '--no-color', '--no-emoji'], ROOT);
  assert.match(table, /No problems found/, table);
});

test('installed from the tarball into a new project: every entry point works from Node with import and with require()', async () => {
  const project = join(work, 'consumer');
  mkdirSync(project);
  await sh('npm', ['init', '-y'], project);
  await sh(
    'npm',
    [
      'install',
      tarball,
      `socket.io@${versionOf('socket.io')}`,
      `socket.io-client@${versionOf('socket.io-client')}`,
      `express-session@${versionOf('express-session')}`,
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
    ],
    project,
  );
  for (const file of readdirSync(CONSUMER)) copyFileSync(join(CONSUMER, file), join(project, file));

  const viaImport = JSON.parse(await sh(process.execPath, ['esm.mjs'], project)) as Record<string, unknown>;
  assert.deepEqual(viaImport, {
    user: 'packed',
    viaTicket: 'packed',
    viaTabs: 'packed',
    sameErrorClasses: true,
    state: 'connected',
    sameErrorCodes: true,
    resolved: ['dist/client/index.js', 'dist/server/index.js', 'dist/client/tickets.js', 'dist/client/tabs.js'],
  });

  const viaRequire = JSON.parse(await sh(process.execPath, ['require.cjs'], project)) as Record<string, unknown>;
  assert.deepEqual(viaRequire, {
    user: 'packed',
    viaTicket: 'packed',
    viaTabs: 'packed',
    sameErrorClasses: true,
    state: 'connected',
    sameErrorCodes: true,
    resolved: ['dist/client/index.cjs', 'dist/server/index.cjs', 'dist/client/tickets.cjs', 'dist/client/tabs.cjs'],
  });
});

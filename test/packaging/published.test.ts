/**
 * The package as npm publishes it: `npm pack` of the built package, linted with publint and
 * @arethetypeswrong/cli, then installed into a new project that uses both entry points from
 * Node, with `import` and with `require()`, for a real session handshake and event
 * (test/fixtures/consumer/). The tarball and the project come from test/helpers/packed.ts (shared
 * with snippets.test.ts). Needs `npm run build` first, as `npm test` does.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packedProject, ROOT, sh, type PackedProject } from '../helpers/packed.js';

const CONSUMER = join(ROOT, 'test/fixtures/consumer');
const BIN = join(ROOT, 'node_modules/.bin');

let packed: PackedProject;

before(async () => {
  packed = await packedProject();
});

test('publint reports no problem in the tarball (errors, warnings or suggestions)', async () => {
  const { publint } = await import('publint');
  const { formatMessage } = await import('publint/utils');
  const buffer = readFileSync(packed.tarball);
  const { messages, pkg } = await publint({ pack: { tarball: buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) }, level: 'suggestion' });
  assert.deepEqual(
    messages.map((m) => `${m.type}: ${formatMessage(m, pkg) ?? m.code}`),
    [],
  );
});

test('@arethetypeswrong/cli reports no problem for any entry point (node10, node16 from CJS and ESM, bundler)', async () => {
  const table = await sh(join(BIN, 'attw'), [packed.tarball, '--format', 'table-flipped', '--no-color', '--no-emoji'], ROOT);
  assert.match(table, /No problems found/, table);
});

test('installed from the tarball into a new project: every entry point works from Node with import and with require()', async () => {
  const { project } = packed;
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

test('under the `production` export condition (Vite and webpack production builds) socket.io-sessions is the core without the option check', async () => {
  const probe = `
    const entry = import.meta.resolve('socket.io-sessions').split('/node_modules/socket.io-sessions/')[1];
    const { connectWithSession } = await import('socket.io-sessions');
    let threw = false;
    try { connectWithSession('http://127.0.0.1:9', { autoConnect: false, maxReload: 1 }).disconnect(); } catch { threw = true; }
    console.log(JSON.stringify({ entry, threw }));`;
  const run = async (conditions: string[]) => JSON.parse(await sh(process.execPath, [...conditions, '--input-type=module', '-e', probe], packed.project)) as unknown;
  assert.deepEqual(await run(['--conditions=production']), { entry: 'dist/client/index.min.js', threw: false });
  assert.deepEqual(await run([]), { entry: 'dist/client/index.js', threw: true });
});

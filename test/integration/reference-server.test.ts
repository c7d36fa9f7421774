/**
 * `npm start`'s process (server-stub/server.js) as a new user meets it: a port it needs already
 * taken, and the data it keeps on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnNode, startReferenceServer, terminate } from '../helpers/reference-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test("the demo page's port taken: the process ends saying which port and how to move it, without first printing that it is up", { timeout: 30_000 }, async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const pagePort = (busy.address() as { port: number }).port;
  const dataDir = mkdtempSync(join(tmpdir(), 'sio-sessions-ref-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(await freePort()), HOST: '127.0.0.1', DATA_DIR: dataDir, PAGE_PORT: String(pagePort) };
  delete env.NODE_TEST_CONTEXT;
  const proc = spawnNode(['server-stub/server.js'], { cwd: ROOT, env });
  t.after(() => terminate(proc, 3000));
  let output = '';
  proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  assert.notEqual(code, 0, output);
  assert.match(output, new RegExp(`port ${pagePort}, for the cross-origin demo page, is taken \\(PAGE_PORT=0 picks a free one\\)`));
  assert.doesNotMatch(output, /reference server on http/, 'it never said it was up');
});

test('the data directory it creates (sessions and secret) is for its user only', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'sio-sessions-ref-'));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const dataDir = join(parent, 'data'); // made by the server (with the default umask it was readable by all)
  const server = await startReferenceServer({ env: { DATA_DIR: dataDir } });
  t.after(() => server.dispose());
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
});

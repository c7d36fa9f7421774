// The reference server never blocks its event loop on a locked SQLite database: while another
// process holds the write lock (a backup, an admin's sqlite3 shell), a write gets
// `sio-sessions:unavailable` quickly (not after SQLite's 5 s busy wait, during which nothing else
// runs), a read-only event of another user is answered at once (WAL reads need no write lock), and
// writes work again once the lock is released.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { sessionState, startReferenceServer, type ReferenceServer } from '../helpers/reference-server.js';
import { connectClient, connected, once } from '../helpers/servers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOLD_MS = 8000;

/** Another process that takes the database's write lock (BEGIN IMMEDIATE) until its stdin closes (at most HOLD_MS). */
const LOCKER = `
const Database = require('better-sqlite3');
const db = new Database(process.argv[1]);
db.exec('BEGIN IMMEDIATE');
console.log('locked');
const release = () => { db.exec('COMMIT'); db.close(); process.exit(0); };
process.stdin.on('end', release).resume();
setTimeout(release, ${HOLD_MS});
`;

async function login(server: ReferenceServer, name: string): Promise<string> {
  const res = await fetch(`${server.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
  assert.equal(res.status, 200);
  await res.arrayBuffer(); // the whole body: express-session has saved the session by then
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

test('reference server: while another process holds the SQLite write lock, a write gets "unavailable" within 2 s, another user\'s read answers at once, and writes work again after', async (t) => {
  const server = await startReferenceServer();
  t.after(() => server.dispose());
  const [cookieA, cookieB] = await Promise.all([login(server, 'ann'), login(server, 'ben')]);
  const writer = connectClient(server.url, cookieA);
  const reader = connectClient(server.url, cookieB);
  t.after(() => writer.close());
  t.after(() => reader.close());
  await Promise.all([connected(writer), connected(reader)]);
  assert.deepEqual(await writer.timeout(3000).emitWithAck('increment'), { counter: 1 });

  const locker = spawn(process.execPath, ['-e', LOCKER, join(server.dataDir, 'sessions.db')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const lockerExit = new Promise<void>((resolve) => locker.once('exit', () => resolve()));
  t.after(() => {
    locker.stdin!.end();
    return lockerExit;
  });
  await once(locker.stdout!, 'data', 10_000);

  const lockedAt = performance.now();
  const writeOutcome = new Promise<{ what: string; ms: number }>((resolve) => {
    const done = (what: string) => resolve({ what, ms: performance.now() - lockedAt });
    writer.once('sio-sessions:unavailable', (data: { reason?: string }) => done(`unavailable (${data?.reason})`));
    writer.timeout(10_000).emit('increment', (err: Error | null, result: unknown) => done(err ? 'no answer in 10 s' : `ack ${JSON.stringify(result)}`));
  });
  // A moment later, another user's read-only event.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const readStarted = performance.now();
  const read = await reader.timeout(10_000).emitWithAck('state').then(
    (state: unknown) => ({ state, ms: performance.now() - readStarted }),
    () => ({ state: 'no answer in 10 s', ms: performance.now() - readStarted }),
  );
  const write = await writeOutcome;

  locker.stdin!.end();
  await lockerExit;
  const after = await writer.timeout(3000).emitWithAck('increment').catch((err: Error) => err.message);
  t.diagnostic(`during the lock: write -> ${write.what} after ${write.ms.toFixed(0)} ms; read -> ${JSON.stringify(read.state)} after ${read.ms.toFixed(0)} ms; after release: ${JSON.stringify(after)}`);

  assert.match(write.what, /^(unavailable|ack)/, 'the write is answered');
  assert.ok(write.ms < 2000, `the write was answered after ${write.ms.toFixed(0)} ms (want < 2000 ms)`);
  assert.deepEqual(typeof read.state === 'string' ? read.state : sessionState(read.state), { counter: 0, user: 'ben' });
  assert.ok(read.ms < 500, `another user's read took ${read.ms.toFixed(0)} ms (want < 500 ms)`);
  assert.equal(typeof (after as { counter?: unknown }).counter, 'number', 'writes work again after the lock is released');
});

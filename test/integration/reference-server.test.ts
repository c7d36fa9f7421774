/**
 * `npm start`'s process (server-stub/server.js) as a new user meets it: a port it needs already
 * taken, the data it keeps on disk, what it writes for visitors, what it lets other sites do, how
 * it answers a bad request. (Its pages in a browser: test/browser/reference-server.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { freePort, sessionState, spawnNode, startReferenceServer, terminate, type ReferenceServer } from '../helpers/reference-server.js';
import { connectClient, connected } from '../helpers/servers.js';
// @ts-expect-error: a plain JavaScript module (the reference server's), without declarations
import { SqliteStore } from '../../server-stub/sqlite-store.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Rows in the server's sessions.db: the sessions it wrote. */
function storedSessions(server: ReferenceServer): number {
  const db = new Database(join(server.dataDir, 'sessions.db'), { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** The `name=value` of a response's session cookie, or undefined when it sets none. */
const sessionCookie = (res: Response) => /connect\.sid=[^;]+/.exec(res.headers.get('set-cookie') ?? '')?.[0];

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

test("a crawler's GETs of every page and asset write nothing to sessions.db; a visitor's session is written once worth keeping, and survives a restart", async (t) => {
  const server = await startReferenceServer({ waitForPage: true });
  t.after(() => server.dispose());
  const pages = ['/', '/index.html', '/ping.html', '/no-session.html', '/demo.js', '/api/session', '/socket.io/socket.io-sessions.js'].map((path) => `${server.url}${path}`);
  for (const url of [...pages, `${server.pageUrl}/cross-origin.html`]) {
    for (let i = 0; i < 3; i++) assert.equal((await fetch(url)).status, 200, url);
  }
  assert.equal(storedSessions(server), 0, 'sessions.db holds no session after 24 anonymous GETs');

  // The session a first visit got is a real one: its socket connects with it.
  const cookie = sessionCookie(await fetch(`${server.url}/`));
  assert.ok(cookie, 'the demo page gives a first visit a session');
  const socket = connectClient(server.url, cookie);
  t.after(() => socket.close());
  await connected(socket);
  assert.deepEqual(sessionState(await socket.timeout(5000).emitWithAck('state')), { counter: 0, user: null });
  assert.equal(storedSessions(server), 0, 'still nothing in sessions.db');

  // A counter change is worth keeping: written (per-message mode acks after the save), and kept across a restart.
  assert.deepEqual(await socket.timeout(5000).emitWithAck('increment'), { counter: 1 });
  assert.equal(storedSessions(server), 1);
  socket.close();
  await server.restart();
  const again = connectClient(server.url, cookie);
  t.after(() => again.close());
  await connected(again);
  assert.deepEqual(sessionState(await again.timeout(5000).emitWithAck('state')), { counter: 1, user: null });
});

test("the SQLite store with `keep`: sessions not worth keeping stay in memory, at most `maxFresh` (the oldest go first); one worth keeping is written and stays", async (t) => {
  const store = new SqliteStore({ path: ':memory:', keep: (sess: { user?: string }) => sess.user !== undefined, maxFresh: 2 });
  t.after(() => store.close());
  const call = <T>(fn: (cb: (err: unknown, value?: T) => void) => void) =>
    new Promise<T | undefined>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
  const cookie = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000).toISOString() };
  for (const sid of ['a', 'b', 'c']) await call((cb) => store.set(sid, { cookie, createdAt: 1 } as never, cb));
  assert.equal(await call((cb) => store.get('a', cb)), null, 'the oldest went past maxFresh');
  assert.deepEqual(await call((cb) => store.get('c', cb)), { cookie, createdAt: 1 });
  assert.equal(store.db.prepare('SELECT COUNT(*) AS n FROM sessions').get().n, 0, 'none in the file');

  await call((cb) => store.set('b', { cookie, createdAt: 1, user: 'ann' } as never, cb));
  await call((cb) => store.set('b', { cookie, createdAt: 1 } as never, cb)); // once in the file, it stays there
  assert.equal(store.db.prepare('SELECT COUNT(*) AS n FROM sessions').get().n, 1, 'the one worth keeping is in the file');
  for (const sid of ['d', 'e', 'f']) await call((cb) => store.set(sid, { cookie, createdAt: 1 } as never, cb));
  assert.deepEqual(await call((cb) => store.get('b', cb)), { cookie, createdAt: 1 }, 'not pushed out by newer ones in memory');
  assert.equal(await call((cb) => store.length(cb)), 3, 'b in the file, e and f in memory');
});

test("another site's form post to /login (login CSRF) or /logout is refused 403 and changes no session; the demo's own pages, on either origin, log in", async (t) => {
  const server = await startReferenceServer({ waitForPage: true });
  t.after(() => server.dispose());
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const json = { 'content-type': 'application/json' };

  const forged = await fetch(`${server.url}/login`, { method: 'POST', headers: { ...form, origin: 'http://evil.example' }, body: 'name=mallory' });
  assert.equal(forged.status, 403);
  assert.equal(sessionCookie(forged), undefined, 'no session cookie for the browser');
  assert.equal(storedSessions(server), 0, 'no session written');

  for (const origin of [server.url, server.pageUrl!]) {
    const res = await fetch(`${origin}/login`, { method: 'POST', headers: { ...json, origin }, body: JSON.stringify({ name: 'ann' }) });
    assert.equal(res.status, 200, origin);
    assert.equal(((await res.json()) as { user: string }).user, 'ann');
  }
  // A client that is no browser page (no Origin: curl, a Node client) is not another site's page.
  const curl = await fetch(`${server.url}/login`, { method: 'POST', headers: form, body: 'name=bob' });
  assert.equal(curl.status, 200);
  const cookie = sessionCookie(curl)!;

  const logout = await fetch(`${server.url}/logout`, { method: 'POST', headers: { cookie, origin: 'http://evil.example' } });
  assert.equal(logout.status, 403);
  const still = await fetch(`${server.url}/api/session`, { headers: { cookie } });
  assert.equal(((await still.json()) as { user: string }).user, 'bob', 'still logged in');
});

test('a request it cannot parse gets a short JSON error, without a stack, with NODE_ENV unset', async (t) => {
  const server = await startReferenceServer({ env: { NODE_ENV: '' } }); // Express reads '' as unset: "development"
  t.after(() => server.dispose());
  const res = await fetch(`${server.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
  assert.equal(res.status, 400);
  const body = await res.text();
  assert.doesNotMatch(body, /\bat .*\(|node_modules/, 'no stack trace');
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(JSON.parse(body), { error: 'Bad Request' });
});

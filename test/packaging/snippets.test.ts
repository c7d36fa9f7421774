/**
 * The code a newcomer copies from README.md and docs/*.md runs, exactly as printed. A block is
 * part of the reader's project when the line before its fence is a marker:
 *
 *   <!-- snippet: install -->            the install command (`npm install …`)
 *   <!-- snippet: server.mjs -->         a file of the project, at that path
 *   <!-- snippet: public/index.html -->
 *
 * Every marked file is written into a new directory that uses the project test/helpers/packed.ts
 * installed from `npm pack` (the install line's packages, shared with published.test.ts); every
 * JavaScript file must parse; `server.mjs` runs (PORT: a free port) and `public/index.html`, the
 * page it serves at `/`, is driven in Chromium: no session yet, log in, a socket round trip that
 * reads and writes the session, log out, log in again, log in as someone else while connected.
 * Needs `npm run build` first, as `npm test` does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient } from 'socket.io-client';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, PageRecorder, textOf, waitUntil } from '../helpers/browser.js';
import { INSTALL_LINE_PACKAGES, packedProject, ROOT, sh } from '../helpers/packed.js';
import { freePort, spawnNode, terminate } from '../helpers/reference-server.js';
import { startRedis } from '../helpers/redis.js';
import { connectClient, connected, once } from '../helpers/servers.js';
import { Events } from '../../src/protocol.js';

interface Snippet {
  /** `install`, or the file's path in the reader's project. */
  name: string;
  code: string;
  /** Where it is printed, for messages: `README.md:42`. */
  where: string;
}

const MARKER = /^<!-- snippet: (\S+) -->$/;

/** Every marked block of README.md and docs/*.md. A marker must stand right before a fence. */
function snippets(): Snippet[] {
  const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const found: Snippet[] = [];
  for (const page of pages) {
    const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const name = MARKER.exec(line)?.[1];
      if (!name) return;
      const where = `${page}:${i + 1}`;
      assert.match(lines[i + 1] ?? '', /^```\w*$/, `${where}: a snippet marker must be followed by a code fence`);
      const end = lines.indexOf('```', i + 2);
      assert.ok(end > i, `${where}: the fence is not closed`);
      found.push({ name, code: lines.slice(i + 2, end).join('\n') + '\n', where });
    });
  }
  return found;
}

const all = snippets();
const byName = new Map(all.map((s) => [s.name, s]));
let app: string;
let browser: Browser;

before(async () => {
  const { project } = await packedProject();
  app = mkdtempSync(join(tmpdir(), 'socket.io-sessions-snippets-'));
  copyFileSync(join(project, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(project, 'node_modules'), join(app, 'node_modules'), 'dir');
  for (const { name, code } of all.filter((s) => s.name !== 'install')) {
    mkdirSync(dirname(join(app, name)), { recursive: true });
    writeFileSync(join(app, name), code);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (app) rmSync(app, { recursive: true, force: true });
});

test('each snippet is marked once; the install line is the one the packed project was installed with', () => {
  assert.deepEqual(
    all.map((s) => s.name).filter((name, i, names) => names.indexOf(name) !== i),
    [],
    'a file printed twice',
  );
  for (const needed of ['install', 'server.mjs', 'public/index.html']) assert.ok(byName.has(needed), `no snippet "${needed}"`);
  assert.equal(byName.get('install')!.code.trim(), `npm install ${INSTALL_LINE_PACKAGES.join(' ')}`, byName.get('install')!.where);
});

test('every JavaScript snippet parses', async () => {
  for (const { name, where } of all.filter((s) => /\.(m|c)?js$/.test(s.name))) {
    await sh(process.execPath, ['--check', name], app).catch((err: Error) => assert.fail(`${where} (${name}): ${err.message}`));
  }
});

/**
 * Starts `node <file>` in the app with PORT (a free port) and `env`; resolves once `ready` (a path)
 * answers 200.
 */
async function startSnippetServer(
  t: { after(fn: () => unknown): void },
  { file = 'server.mjs', env: extra = {}, ready = '/' }: { file?: string; env?: Record<string, string>; ready?: string } = {},
): Promise<{ url: string; port: number; output: () => string }> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), ...extra };
  delete env.NODE_TEST_CONTEXT;
  const proc = spawnNode([file], { cwd: app, env });
  t.after(() => terminate(proc, 3000));
  let output = '';
  proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (proc.exitCode !== null) throw new Error(`${file} exited (${proc.exitCode}):\n${output}`);
      return (await fetch(url + ready).catch(() => undefined))?.status;
    },
    (status) => status === 200,
    { timeout: 30_000, what: `${file} to answer`, describe: () => output }, // a start on a loaded machine, not a measurement
  );
  return { url, port, output: () => output };
}

test('server.mjs and public/index.html, as printed: log in, the session reaches the socket handlers, log out, log in again', async (t) => {
  const server = await startSnippetServer(t);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const rec = new PageRecorder(page);
  const logShows = (pattern: RegExp, what: string, timeout = 10_000) =>
    waitUntil(() => textOf(page, '#log'), (log) => pattern.test(log ?? ''), { timeout, what, describe: () => `${rec.dump()}\nserver:\n${server.output()}` });
  const logIn = async (name: string) => {
    await page.fill('#name', name);
    await page.click('#login button');
  };

  await page.goto(`${server.url}/`);
  await logShows(/^no session \(no-session-id\): log in$/m, 'the page to see it has no session yet');

  await logIn('ann');
  await logShows(/^connected as ann$/m, 'the socket to connect with the new session');
  await page.click('#visit');
  await logShows(/^visits: 1$/m, 'the first visit');
  await page.click('#visit');
  await logShows(/^visits: 2$/m, 'the second visit: the handler wrote the session');

  await page.click('#logout');
  await logShows(/^no session \((destroyed|not-found)\): log in$/m, 'the page to hear the session ended');
  await logIn('bob');
  await logShows(/^connected as bob$/m, 'the socket to connect in the new session');
  await page.click('#visit');
  await logShows(/^visits: 2\n(.*\n)*visits: 1$/m, 'a new session starts from no visits');

  // Logging in as someone else while connected: the SDK reconnects with the new cookie by itself.
  await logIn('carl');
  await logShows(/^connected as carl$/m, 'the socket to follow the login', 15_000);
  assert.equal(rec.navigations, 1, `the page never reloaded:\n${rec.dump()}`);
});

test('server.mjs as printed stays up for what any page or client may send: a login without a JSON body (400), emits without a callback (no answer, nothing logged)', async (t) => {
  const server = await startSnippetServer(t);
  for (const init of [{ method: 'POST' }, { method: 'POST', body: 'hi' }, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":5}' }]) {
    assert.equal((await fetch(`${server.url}/login`, init)).status, 400, server.output());
  }
  const login = await fetch(`${server.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"ann"}' });
  assert.equal(login.status, 200, server.output());
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const client = ioClient(server.url, { transports: ['websocket'], extraHeaders: { cookie }, forceNew: true, reconnection: false });
  t.after(() => client.close());
  await new Promise<void>((resolve, reject) => (client.once('connect', resolve), client.once('connect_error', reject)));
  const before = server.output().length;
  for (let i = 0; i < 20; i++) client.emit('visit'), client.emit('whoami'), client.emit('visit', 5);
  assert.equal(await client.timeout(5000).emitWithAck('visit'), 1, 'the emits without a callback changed nothing');
  assert.equal(server.output().length, before, `nothing logged:\n${server.output().slice(before)}`);
});

test('README page as printed, invariant 10: 3 visits after a logout fail with session-ended and never reach the next user\'s session', async (t) => {
  const server = await startSnippetServer(t);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const rec = new PageRecorder(page);
  const log = async () => (await textOf(page, '#log')) ?? '';
  const logShows = (pattern: RegExp, what: string) =>
    waitUntil(log, (text) => pattern.test(text), { timeout: 10_000, what, describe: () => `${rec.dump()}\nserver:\n${server.output()}` });
  const logIn = async (name: string) => {
    await page.fill('#name', name);
    await page.click('#login button');
  };
  await page.goto(`${server.url}/`);
  await logShows(/^no session \(no-session-id\): log in$/m, 'no session yet');
  await logIn('ann');
  await logShows(/^connected as ann$/m, 'connected as ann');
  await page.click('#visit');
  await logShows(/^visits: 1$/m, "ann's first visit");
  await page.click('#logout');
  await logShows(/^no session \((destroyed|not-found)\): log in$/m, 'the page to hear the session ended');
  for (let i = 0; i < 3; i++) await page.click('#visit');
  // The page's callback logs what it gets: the SessionEmitError, as the only argument.
  await logShows(/(visits: SessionEmitError: emit 'visit' failed: session-ended\n){3}/, 'the 3 visits to fail with session-ended');
  await logIn('bob');
  await logShows(/^connected as bob$/m, 'connected as bob');
  await page.click('#visit');
  await logShows(/^connected as bob\n(.*\n)*visits: 1$/m, "bob's first visit counts 1: none of the 3 reached his session");
  assert.equal((await log()).match(/^visits: \d+$/gm)?.join(','), 'visits: 1,visits: 1', 'no other visit was counted');
});

test('in the page, a misspelled option of io.connectWithSession throws SessionOptionsError naming the nearest option', async (t) => {
  const server = await startSnippetServer(t);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page: Page = await context.newPage();
  await page.goto(`${server.url}/`);
  const thrown = await page.evaluate(() => {
    const w = window as unknown as { io: { connectWithSession(o: object): unknown }; ioSessions: { SessionOptionsError: new () => Error } };
    try {
      w.io.connectWithSession({ maxReload: 3 });
      return null;
    } catch (err) {
      return { name: (err as Error).name, message: (err as Error).message, sameClass: err instanceof w.ioSessions.SessionOptionsError };
    }
  });
  assert.deepEqual(thrown, {
    name: 'SessionOptionsError',
    message: 'socket.io-sessions: connectWithSession() has no option "maxReload" (did you mean "maxReloads"?)',
    sameClass: true,
  });
});

test('docs/scaling.md\'s scaling.mjs, as printed, two nodes on one redis-server: a session made on node A is used by a socket on node B, and a logout on A reaches that socket', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.dispose());
  const env = { REDIS_URL: redis.url, SESSION_SECRET: 'scaling snippet secret' };
  const [nodeA, nodeB] = await Promise.all([0, 1].map(() => startSnippetServer(t, { file: 'scaling.mjs', env, ready: '/socket.io/socket.io.js' })));
  const login = await fetch(`${nodeA.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"ann"}' });
  assert.equal(login.status, 200, nodeA.output());
  // express-session holds back the body's last byte until the session is saved: the whole body means it is in Redis.
  assert.deepEqual(await login.json(), { user: 'ann' });
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;

  const socket = connectClient(nodeB.url, cookie, { transports: ['websocket'] });
  t.after(() => socket.close());
  await connected(socket);
  assert.deepEqual(await socket.timeout(5000).emitWithAck('whoami'), { user: 'ann', port: String(nodeB.port) });

  const told = once<[unknown]>(socket, Events.INVALID, 5000);
  const gone = once(socket, 'disconnect', 5000);
  const logout = await fetch(`${nodeA.url}/logout`, { method: 'POST', headers: { cookie } });
  assert.equal(logout.status, 200);
  assert.deepEqual((await told)[0], { code: 'SESSION_INVALID', reason: 'destroyed' });
  await gone;
  assert.doesNotMatch(nodeA.output() + nodeB.output(), /warn|deprecat|error/i, 'nothing printed: no deprecation warning, no Redis error');
});

/**
 * The apps in examples/ run as a user copies them: each example's folder is copied into a new
 * directory that uses the project test/helpers/packed.ts installed from `npm pack` (so it imports
 * the package by its name, as an app does), started with its one command on free ports, and driven
 * in Chromium. Needs `npm run build` first, as `npm test` does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchBrowser, PageRecorder, textOf, waitUntil } from '../helpers/browser.js';
import { packedProject, ROOT } from '../helpers/packed.js';
import { freePort, spawnNode, terminate } from '../helpers/reference-server.js';

let browser: Browser;
const dirs: string[] = [];

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Copies examples/<name> next to the packed install, runs `node server.mjs`; resolves once `url` answers. */
async function startExample(t: { after(fn: () => unknown): void }, name: string, env: Record<string, string>, url: string) {
  const { project } = await packedProject();
  const dir = mkdtempSync(join(tmpdir(), `socket.io-sessions-example-${name}-`));
  dirs.push(dir);
  cpSync(join(ROOT, 'examples', name), dir, { recursive: true });
  symlinkSync(join(project, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_TEST_CONTEXT;
  const proc = spawnNode(['server.mjs'], { cwd: dir, env: childEnv });
  t.after(() => terminate(proc, 3000));
  let output = '';
  proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitUntil(
    async () => {
      if (proc.exitCode !== null) throw new Error(`examples/${name} exited (${proc.exitCode}):\n${output}`);
      return (await fetch(url)).status;
    },
    (status) => status === 200,
    { timeout: 15_000, what: `examples/${name} to answer`, describe: () => output },
  );
  return { output: () => output };
}

async function openPage(t: { after(fn: () => unknown): void }, url: string, server: { output(): string }) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const rec = new PageRecorder(page);
  await page.goto(url);
  const logShows = (pattern: RegExp, what: string, timeout = 10_000) =>
    waitUntil(() => textOf(page, '#log'), (log) => pattern.test(log ?? ''), { timeout, what, describe: () => `${rec.dump()}\nserver:\n${server.output()}` });
  const logIn = async (name: string) => {
    await page.fill('#name', name);
    await page.click('#login button');
  };
  return { page, logShows, logIn };
}

test("examples/chat: each message carries its author from the session; a logout ends that page's connection", async (t) => {
  const port = await freePort();
  const url = `http://localhost:${port}/`;
  const server = await startExample(t, 'chat', { PORT: String(port) }, url);
  const ann = await openPage(t, url, server);
  const bob = await openPage(t, url, server);
  await ann.logShows(/not logged in/, 'a page without a session to ask for a login');
  await ann.logIn('ann');
  await bob.logIn('bob');
  await ann.logShows(/^connected$/m, 'ann to connect');
  await bob.logShows(/^connected$/m, 'bob to connect');
  await ann.page.fill('#text', 'hello from ann');
  await ann.page.click('#say button');
  await bob.logShows(/^ann: hello from ann$/m, "bob to see ann's message, named from her session");
  // A client that tries to name itself gets its session's name anyway.
  await bob.page.evaluate(`socket.emit('say', 'I am ann', { user: 'ann' })`);
  await ann.logShows(/^bob: I am ann$/m, 'the message to carry bob, whatever the client sent');
  await ann.page.click('#logout');
  await ann.logShows(/not logged in \((destroyed|not-found)\)/, "ann's page to hear her session ended");
});

test('examples/cart: 10 HTTP and 10 socket adds at once, all 20 in the cart', async (t) => {
  const port = await freePort();
  const url = `http://localhost:${port}/`;
  const server = await startExample(t, 'cart', { PORT: String(port) }, url);
  const { page, logShows } = await openPage(t, url, server);
  await logShows(/^connected$/m, 'the page to connect with its session');
  await page.click('#both');
  await logShows(/^cart: \d+ items$/m, 'the cart after the adds');
  assert.match((await textOf(page, '#log')) ?? '', /^cart: 20 items$/m);
});

test('examples/tickets: a page on another site than its Socket.IO server connects with tickets, logged out then logged in', async (t) => {
  const [port, socketPort] = [await freePort(), await freePort()];
  const url = `http://localhost:${port}/`;
  const server = await startExample(t, 'tickets', { PORT: String(port), SOCKET_PORT: String(socketPort) }, url);
  const { page, logShows, logIn } = await openPage(t, url, server);
  await logShows(/^no session \([\w-]+\): log in$/m, 'a logged-out page to ask for a login');
  await logIn('ann');
  await logShows(/^connected as ann$/m, 'the socket to connect with a ticket of the new session');
  await page.click('#visit');
  await logShows(/^visits: 1$/m, 'a socket write to the session');
  await logIn('bob');
  await logShows(/^connected as bob$/m, 'the socket to follow a login as someone else', 15_000);
});

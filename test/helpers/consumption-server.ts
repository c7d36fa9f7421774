/**
 * The servers the consumption pages (test/fixtures/consumption/) run against: a session server
 * (express-session + Socket.IO + this library) that also serves the fixtures and dist/, and a CDN
 * stand-in on another origin serving dist/cdn/ as jsDelivr lays it out. Shared by the Chromium
 * suite (consumption.test.ts) and the engines suite.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './servers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/consumption');
const DIST = join(ROOT, 'dist');
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };

/**
 * A static file handler: `mounts` maps URL prefixes to folders. `__CDN__` in HTML pages becomes the
 * CDN stand-in's origin. With `cors`, files are sent with `Access-Control-Allow-Origin: *`, as CDNs do.
 */
function staticFiles(mounts: Record<string, string>, { cors = false, cdnOrigin = (): string => '' } = {}) {
  return async (req: IncomingMessage, res: ServerResponse, next: () => void): Promise<void> => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const prefix = Object.keys(mounts).find((p) => path.startsWith(p));
    if (!prefix || req.method !== 'GET') return next();
    const dir = mounts[prefix]!;
    const file = resolve(dir, `.${path.slice(prefix.length - 1)}`);
    if (!file.startsWith(dir + sep)) return next();
    let body: Buffer | string;
    try {
      body = await readFile(file);
    } catch {
      return next();
    }
    if (extname(file) === '.html') body = body.toString('utf8').replaceAll('__CDN__', cdnOrigin());
    res.writeHead(200, {
      'Content-Type': `${TYPES[extname(file)] ?? 'application/octet-stream'}; charset=utf-8`,
      'Cache-Control': 'no-store',
      ...(cors ? { 'Access-Control-Allow-Origin': '*' } : {}),
    });
    res.end(body);
  };
}

export interface ConsumptionServers {
  /** The session server, `http://localhost:<port>`: fixtures under /fixtures/, dist/ under /pkg/dist/. */
  appOrigin: string;
  /** The CDN stand-in, `http://localhost:<other port>`: dist/cdn/ under /npm/socket.io-sessions/dist/cdn/, fixtures under /fixtures/. */
  cdnOrigin: string;
  close(): Promise<void>;
}

/**
 * Starts both. The session server greets each connection with `welcome` (the session's user)
 * and answers `whoami` with `{ user, payload }`; POST /login `{ user }` logs in.
 */
export async function startConsumptionServers(): Promise<ConsumptionServers> {
  const cdn: HttpServer = createServer((req, res) => {
    void staticFiles({ '/npm/socket.io-sessions/dist/cdn/': join(DIST, 'cdn'), '/fixtures/': FIXTURES }, { cors: true })(req, res, () => {
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((done) => cdn.listen(0, '127.0.0.1', done));
  const cdnOrigin = `http://localhost:${(cdn.address() as AddressInfo).port}`;

  const app = await startServer({
    routes(expressApp) {
      expressApp.use(staticFiles({ '/fixtures/': FIXTURES, '/pkg/dist/': DIST }, { cdnOrigin: () => cdnOrigin }));
    },
    // A page on the CDN origin connects here: CORS for polling, and the library's origin check.
    ioOptions: { cors: { origin: cdnOrigin, credentials: true } },
    origins: (origin, req) => origin === cdnOrigin || origin === `http://${req.headers.host}`,
  });
  app.sio.on('sconnection', (socket) => {
    socket.emit('welcome', socket.session.user);
    socket.on('whoami', (payload: unknown, ack: (reply: unknown) => void) => ack({ user: socket.session.user, payload }));
  });
  return {
    appOrigin: `http://localhost:${app.port}`,
    cdnOrigin,
    close: async () => {
      await app.close();
      await new Promise((done) => cdn.close(done));
    },
  };
}

/** What a consumption page publishes as `window.outcome` (test/fixtures/consumption/exchange.js). */
export interface Outcome {
  done?: boolean;
  states: string[];
  errors: string[];
  welcome?: string;
  reply?: { user: string; payload: string };
  transport?: string;
  sessionsState?: string;
}

/** What every way of including the SDK must achieve: its own session on connect, an event each way, no error. */
export function assertExchanged(outcome: Outcome, user: string): void {
  assert.deepEqual(outcome.errors, []);
  assert.equal(outcome.welcome, user, 'server → client event carries the session');
  assert.deepEqual(outcome.reply, { user, payload: 'ping' }, 'client → server event with ack, handled with the session');
  assert.equal(outcome.sessionsState, 'connected');
  assert.deepEqual(outcome.states.slice(0, 2), ['connecting', 'connected']);
}

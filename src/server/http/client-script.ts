/**
 * Serves the browser add-on at `<io path>/socket.io-sessions.js`, the seed's path, on the
 * Socket.IO HTTP server, in front of Socket.IO's and engine.io's own request handlers.
 * The response is per user (it carries a ticket), so it is never cached.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventEmitter } from 'node:events';
import { CLIENT_SCRIPT_NAME, EMBED_GLOBAL, EMBED_UNAVAILABLE, type Ticket } from '../../protocol.js';

/** dist/server/index.js (bundled) → dist/umd/; src/server/http/*.ts (tests run from source) → dist/umd/. */
const UMD_DIRS = ['../umd/', '../../../dist/umd/'];
const TICKETS_SCRIPT_NAME = 'socket.io-sessions-tickets.js';
const CHECK_SCRIPT_NAME = 'socket.io-sessions-check.js';

/** The option check is a development aid: left out, as express leaves out its own, under NODE_ENV=production. */
const withOptionCheck = () => process.env.NODE_ENV !== 'production';

let cached: { script: string; map?: string; check: string } | undefined;

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** A part served after the add-on: its source-map comment dropped, so the add-on's is the only one and the map served is the add-on's. */
const withoutMapComment = (code: string) => code.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '');

/**
 * The add-on followed by its tickets part, as one script, and the option check to put after them
 * (see {@link withOptionCheck}).
 */
function loadFiles(): { script: string; map?: string; check: string } {
  if (cached) return cached;
  for (const dir of UMD_DIRS) {
    const file = (name: string) => fileURLToPath(new URL(dir + name, import.meta.url));
    const script = read(file(CLIENT_SCRIPT_NAME));
    const tickets = read(file(TICKETS_SCRIPT_NAME));
    const check = read(file(CHECK_SCRIPT_NAME));
    if (script === undefined || tickets === undefined || check === undefined) continue;
    return (cached = { script: `${script}\n${withoutMapComment(tickets)}`, map: read(`${file(CLIENT_SCRIPT_NAME)}.map`), check: `\n${withoutMapComment(check)}` });
  }
  throw new Error(`socket.io-sessions: the browser add-on is not built (looked in ${UMD_DIRS.join(', ')}); run "npm run build"`);
}

/** The served script: the add-on, its tickets part, and the option check unless NODE_ENV=production. */
function loadScript(): { script: string; map?: string } {
  const { script, map, check } = loadFiles();
  return { script: withOptionCheck() ? script + check : script, map };
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * What the served script carries for a request: the ticket to embed (none: the SDK falls back to
 * fetching one or to the cookie), or `unavailable` (the store failed: the SDK retries, never taking
 * it for "no session"), and, asked with `?renew=1`, a `Set-Cookie` renewing the session cookie.
 */
export interface Embedded {
  ticket?: Ticket;
  unavailable?: true;
  setCookie?: string;
}
export type EmbedTicket = (req: IncomingMessage, renewCookie: boolean) => Promise<Embedded>;

/** The statement that hands the page its ticket, appended after the add-on. A ticket is base64url and dots: JSON is safe here. */
function embedStatement({ ticket, unavailable }: Embedded): string {
  return `\n(globalThis.${EMBED_GLOBAL}=globalThis.${EMBED_GLOBAL}||{}).ticket=${JSON.stringify(unavailable ? EMBED_UNAVAILABLE : (ticket ?? null))};\n`;
}

/**
 * A request handler for the add-on and its source map under `basePath` (e.g. '/socket.io'),
 * with a fresh ticket embedded when `embed` gives one (and the session cookie renewed on
 * `?renew=1`). Calls `next` for other URLs.
 */
export function clientScriptHandler(basePath: string, embed?: EmbedTicket) {
  const scriptPath = `${basePath.replace(/\/$/, '')}/${CLIENT_SCRIPT_NAME}`;
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const [path, query = ''] = (req.url ?? '').split('?');
    if ((path !== scriptPath && path !== `${scriptPath}.map`) || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
    let loaded: ReturnType<typeof loadScript>;
    try {
      loaded = loadScript();
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(String((err as Error).message));
      return;
    }
    if (path !== scriptPath) {
      if (loaded.map === undefined) return next();
      return respond(res, req, path, loaded.map);
    }
    if (!embed) return respond(res, req, path, loaded.script);
    const renew = new URLSearchParams(query).get('renew') === '1';
    // `embed` answers every outcome itself; a fault of ours still answers (unavailable: the SDK retries), never an unhandled rejection.
    embed(req, renew)
      .catch((): Embedded => ({ unavailable: true }))
      .then((embedded) => respond(res, req, path, loaded.script + embedStatement(embedded), embedded.setCookie));
  };
  function respond(res: ServerResponse, req: IncomingMessage, path: string, body: string, setCookie?: string): void {
    res.writeHead(200, {
      ...(setCookie ? { 'Set-Cookie': setCookie } : {}),
      'Content-Type': path === scriptPath ? 'application/javascript; charset=utf-8' : 'application/json; charset=utf-8',
      'Cache-Control': 'private, no-store',
      Vary: 'Cookie',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

type ScriptHandler = ReturnType<typeof clientScriptHandler>;

/**
 * Per HTTP server, the served-script handlers of the open `sessions()` instances on it, and the ONE
 * `request` listener of ours in front of the server's own ones that runs them (the latest first).
 * One listener per server, so the instances can close in any order: the last one to close puts the
 * server's listeners back, and until then the script is served by those still open.
 */
const served = new WeakMap<EventEmitter, Front>();

interface Front {
  handlers: ScriptHandler[];
  listener: RequestListener;
  dispose(): void;
}

/** Our listener in front of `server`'s `request` listeners, running the handlers listed for it (`handlers`: shared with an earlier one). */
function inFront(server: EventEmitter, handlers: ScriptHandler[] = []): Front {
  const previous = server.listeners('request') as RequestListener[];
  const run = (req: IncomingMessage, res: ServerResponse, at: number): void => {
    if (at >= 0) return handlers[at]!(req, res, () => run(req, res, at - 1));
    previous.forEach((l) => l.call(server, req, res));
  };
  const listener: RequestListener = (req, res) => run(req, res, handlers.length - 1);
  server.removeAllListeners('request');
  server.on('request', listener);
  const entry: Front = {
    handlers,
    listener,
    dispose() {
      served.delete(server);
      if (!server.listeners('request').includes(listener)) return;
      server.removeListener('request', listener);
      previous.forEach((l) => server.on('request', l));
    },
  };
  served.set(server, entry);
  return entry;
}

/** Put the handler in front of every `request` listener of `server`. Returns a disposer that restores them once no instance serves it. */
export function serveClientScript(server: EventEmitter, basePath: string, embed?: EmbedTicket): () => void {
  const handle = clientScriptHandler(basePath, embed);
  let entry = served.get(server);
  // Another listener went in front of ours since (a second Socket.IO server's engine.io takes the listeners it
  // finds behind its own): ours goes in front again, with the same handlers (the one behind then passes requests on).
  if (entry && server.listeners('request')[0] !== entry.listener) entry = inFront(server, entry.handlers);
  entry ??= inFront(server);
  const { handlers } = entry;
  handlers.push(handle);
  return () => {
    const at = handlers.indexOf(handle);
    if (at < 0) return;
    handlers.splice(at, 1);
    // The last one: the listener in front now (the latest made for these handlers) gives the server's listeners back.
    const front = served.get(server);
    if (handlers.length === 0 && front?.handlers === handlers) front.dispose();
  };
}

/** What of a socket.io Server the served script needs: its HTTP server, once it has one, and `attach` (which `listen` calls). */
export interface AttachableServer {
  httpServer?: EventEmitter;
  attach(...args: unknown[]): unknown;
}

/** Per socket.io Server without an HTTP server yet: the instances waiting for one, and how to take our `attach` wrapper off. */
const waiting = new WeakMap<AttachableServer, { pending: Set<() => void>; unwrap(): void }>();

/**
 * Serve the client script on `io`'s HTTP server: at once when it has one, else from the moment
 * `io.attach()` or `io.listen()` gives it one (`new Server()` first, `sessions()`, then attach, as
 * socket.io documents). socket.io has no event for that: the instance's `attach` is wrapped (an own
 * property of the instance, which `listen` calls too; one wrapper for every instance waiting on it)
 * until it has been called or the last waiting instance closed.
 */
export function serveOnAttach(io: AttachableServer, serve: (server: EventEmitter) => () => void): () => void {
  if (io.httpServer) return serve(io.httpServer);
  let wait = waiting.get(io);
  if (!wait) {
    const pending = new Set<() => void>();
    const had = Object.getOwnPropertyDescriptor(io, 'attach');
    const attach = io.attach;
    const wrapper = function (this: unknown, ...args: unknown[]): unknown {
      const result = attach.apply(this, args);
      if (io.httpServer) {
        unwrap();
        [...pending].forEach((ready) => ready());
      }
      return result;
    };
    const unwrap = () => {
      waiting.delete(io);
      if (io.attach !== wrapper) return;
      if (had) Object.defineProperty(io, 'attach', had);
      else delete (io as Partial<AttachableServer>).attach;
    };
    io.attach = wrapper;
    waiting.set(io, (wait = { pending, unwrap }));
  }
  const { pending, unwrap } = wait;
  let undo: (() => void) | undefined;
  const ready = () => {
    pending.delete(ready);
    undo = serve(io.httpServer!);
  };
  pending.add(ready);
  return () => {
    if (pending.delete(ready) && pending.size === 0) unwrap();
    undo?.();
    undo = undefined;
  };
}

/**
 * The HTTP surfaces of a `sessions()` instance, together: the token endpoint, the served script
 * (both hand out tickets, and renew the session cookie on `?renew=1`), and `httpLock()`. They reach
 * sessions only through the resolver, and write only through the session's runtime and the store hub.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type Ticket } from '../../protocol.js';
import { asUnavailable, SessionError, SessionInvalidError, SessionOptionsError, type SessionUnavailableError } from '../../errors.js';
import type { ServerContext } from '../context.js';
import { acquireWithin, releasing } from '../runtime/lock-wait.js';
import { holdTurn, SessionRuntime } from '../runtime/index.js';
import { expiryOf, type StoreHub } from '../store.js';
import { saveBeforeRequest, saveCopiesBeforeRequest } from '../runtime/tasks.js';
import { log } from '../log.js';
import { audienceOf, isAllowedOrigin, originAllowed, requesterOrigin } from '../origin.js';
import type { Resolved, Resolver } from '../resolver.js';
import { sessionCookie } from '../session-id.js';
import { sessionTag } from '../invalidation.js';
import { clientScriptHandler, serveClientScript, serveOnAttach, type AttachableServer, type Embedded } from './client-script.js';
import { tokenEndpoint } from './token-endpoint.js';

/** How many times a cookie renewal reads the record again when other writes of the session keep starting. */
const RENEW_ATTEMPTS = 3;

/**
 * Put `expires` into the session's stored cookie: read the record, set it, write the record. Never over a write
 * of the session that started in this process after the read did (an HTTP request's own save, without
 * `httpLock()`): its record may be missing from ours, so the record is read again. A write that starts
 * while ours runs is newer and lands last (the store hub sees to it): its record is checked for our expiry,
 * which is written again where it is missing. A few attempts at most: then the cookie is still re-issued
 * (the browser's expiry moves), the stored one not (logged).
 */
async function writeExpiry(hub: StoreHub, sid: string, expires: Date, timeoutMs: number): Promise<void> {
  const watch = hub.watchWrites(sid);
  try {
    for (let attempt = 1; attempt <= RENEW_ATTEMPTS; attempt++) {
      await hub.whenQuiet(sid, timeoutMs);
      const before = watch.started();
      const loaded = await hub.read(sid, timeoutMs);
      if (!('record' in loaded)) throw new SessionInvalidError(loaded.invalid);
      const { record } = loaded;
      if ((expiryOf(record.cookie) ?? 0) >= expires.getTime()) return; // (an express-session save moves it too)
      if (watch.started() !== before) continue; // a write started during the read: its record may not be in ours
      record.cookie = { ...record.cookie, expires } as typeof record.cookie;
      if ((await hub.write(sid, record, timeoutMs)) === 'destroyed') throw new SessionInvalidError('destroyed');
      if (watch.started() === before + 1) return; // ours alone
    }
    log.tickets('session %s: its writes kept overlapping the cookie renewal; the stored expiry was not moved', sessionTag(sid));
  } finally {
    watch.stop();
  }
}

/** Marks a request that holds its session's lock (httpLock), so our own handlers do not wait for it again. */
const LOCK_HELD = Symbol('socket.io-sessions lock held');
type LockedRequest = IncomingMessage & { [LOCK_HELD]?: string };

export class HttpSurfaces {
  constructor(
    private readonly ctx: ServerContext,
    private readonly resolver: Resolver,
  ) {}

  /** The origin a request shows it comes from, when that origin may use the user's session. */
  private trustedRequester(req: IncomingMessage): string | undefined {
    const requester = requesterOrigin(req, this.ctx.options);
    return requester !== undefined && isAllowedOrigin(requester, req, this.ctx.options, this.ctx) ? requester : undefined;
  }

  /** A ticket for `audience` and, on `renew`, a renewed session cookie: one resolution for both. */
  private async issue(req: IncomingMessage, audience: string, renew: boolean): Promise<{ ticket: Ticket; setCookie?: string }> {
    const { sealer } = this.ctx;
    if (!sealer) throw new SessionOptionsError('socket.io-sessions: tickets need a "secret"');
    const resolved = await this.resolver.request(req);
    const ticket = sealer.seal(resolved.sid, audience);
    if (log.tickets.enabled) log.tickets('ticket minted for %s (audience %s)', sessionTag(resolved.sid), audience);
    return { ticket, setCookie: renew ? await this.renewCookie(req, resolved) : undefined };
  }

  /**
   * Re-issue the session cookie with a fresh expiry and extend the session in the store, as
   * express-session's `rolling` would: the `Set-Cookie` value, or undefined for a browser-session
   * cookie. Written, not touched: connect-redis's touch keeps the stored expiry, and sockets learn
   * the browser's cookie expiry from the record. Signed with the first secret, as express-session does.
   */
  private async renewCookie(req: IncomingMessage, { sid, record, entry }: Resolved): Promise<string | undefined> {
    const { options, hub } = this.ctx;
    const cookie = record?.cookie ?? entry?.session.cookie;
    const maxAge = cookie?.originalMaxAge;
    if (!maxAge || options.secrets.length === 0) return undefined;
    const expires = new Date(Date.now() + maxAge);
    const write = () => writeExpiry(hub, sid, expires, options.storeTimeout);
    // Behind httpLock() this request already holds the session's lock, which every unit of the runtime
    // also needs: running through the runtime would wait for ourselves.
    if ((req as LockedRequest)[LOCK_HELD] === sid) await write();
    else {
      let failure: unknown;
      await SessionRuntime.of(hub, sid).task({
        lock: options.lock,
        timeoutMs: options.storeTimeout,
        // Behind a handler that runs long, not for all of its handlerTimeout: 503, which the SDK retries (as httpLock's wait).
        deadline: Date.now() + options.storeTimeout,
        failed: (err) => (failure = err),
        run: () => write().catch((err: unknown) => void (failure = err)),
      });
      if (failure) throw failure;
    }
    if (log.tickets.enabled) log.tickets('session cookie of %s renewed', sessionTag(sid));
    return sessionCookie(options.name, sid, options.secrets[0], cookie, expires);
  }

  /**
   * The served script's ticket (and, on `?renew=1`, renewed cookie): only for a request that shows
   * it comes from an allowed origin. A classic script tag carries no Origin, and any site may
   * include the script: that page must not read a ticket minted with this user's cookie.
   * No session (invalid): no ticket. The store failing (or anything else going wrong): `unavailable`,
   * which the SDK retries with backoff as it retries the token endpoint's 503, never taken for "no session".
   */
  private async embedded(req: IncomingMessage, renew: boolean): Promise<Embedded> {
    try {
      const requester = this.trustedRequester(req);
      if (!this.ctx.sealer || requester === undefined) return {};
      return await this.issue(req, requester, renew);
    } catch (err) {
      return err instanceof SessionError && err.code === ErrorCode.SESSION_INVALID ? {} : { unavailable: true };
    }
  }

  /** See SessionServer.tokenHandler. */
  tokenHandler(path: string) {
    if (!this.ctx.sealer) throw new SessionOptionsError('socket.io-sessions: tickets need a "secret"');
    return tokenEndpoint(
      {
        originRefusal: (req) => (originAllowed(req, this.ctx.options, this.ctx) ? undefined : this.ctx.advice.originRefused(req).data),
        // A cookie is renewed only for a page that shows it is allowed (no cross-site renewal by an image tag).
        // The audience is that page's origin, else the server's own (behind a TLS proxy, for a request
        // without Origin: the public origin listed in `origins`, see ownOrigin; the handshake reads it the same way).
        issue: (req, renew) => {
          const trusted = this.trustedRequester(req);
          return this.issue(req, trusted ?? audienceOf(req, this.ctx.options), renew && trusted !== undefined);
        },
      },
      path,
    );
  }

  /** See SessionServer.clientScriptHandler. */
  clientScript(basePath: string) {
    return clientScriptHandler(basePath, (req, renew) => this.embedded(req, renew));
  }

  /**
   * Serve the client script in front of the request listeners of `io`'s HTTP server, from now or
   * from when `io.attach()`/`io.listen()` gives it one; returns a disposer.
   */
  serveClientScript(io: AttachableServer & { path(): string }): () => void {
    return serveOnAttach(io, (server) => serveClientScript(server, io.path(), (req, renew) => this.embedded(req, renew)));
  }

  /**
   * A request that never ends does not hold the session's lock for good (the lock's keep-alive would):
   * let go after `ms`, as the turn of one node is (holdTurn). The release runs once, whichever comes first.
   */
  private capped(release: () => Promise<void>, ms: number): () => Promise<void> {
    let released = false;
    // (The first call releases, and is told its failure, reported once; a release that throws is a rejection too.)
    const once = () => (released ? Promise.resolve() : ((released = true), clearTimeout(cap), releasing(release)));
    const cap = setTimeout(() => void once().catch((err: unknown) => this.ctx.report(asUnavailable(err))), ms);
    cap.unref();
    return once;
  }

  /** See SessionServer.httpLock. */
  httpLock() {
    const { lock, storeTimeout, handlerTimeout } = this.ctx.options;
    const { hub } = this.ctx;
    // With `lock`, the cross-node lock; without, the session's turn in its runtime (one node).
    // Holding it, this process's unsaved changes of the session are saved first (saveBeforeRequest).
    const prepare = (runtime: SessionRuntime) => saveBeforeRequest(runtime, this.ctx);
    const take = (sid: string) =>
      lock
        ? acquireWithin(lock, sid, Date.now() + storeTimeout).then(async (release) => {
            const runtime = SessionRuntime.find(hub, sid);
            // (With no live copy here, changes of a copy whose socket left may still be due.)
            await (runtime ? prepare(runtime) : saveCopiesBeforeRequest(this.ctx, sid));
            return this.capped(release, handlerTimeout);
          })
        : holdTurn(hub, sid, Date.now() + storeTimeout, handlerTimeout, prepare);
    return (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
      // Listen for the end of the response before waiting: a client that gives up while we wait
      // must not leave the lock taken after its response closed (it would be held for good).
      let release: (() => Promise<void>) | undefined;
      let ended = false;
      const done = () => {
        ended = true;
        const held = release;
        release = undefined;
        held?.().catch((err: unknown) => this.ctx.report(asUnavailable(err)));
      };
      res.once('finish', done);
      res.once('close', done);
      this.resolver.sessionId(req).then(
        (sid) =>
          take(sid).then(
            (granted) => {
              release = granted;
              if (ended) return done();
              (req as LockedRequest)[LOCK_HELD] = sid;
              next();
            },
            (err: SessionUnavailableError) => {
              this.ctx.report(err);
              log.lock('httpLock: 503 (%s)', err.data?.reason);
              if (ended) return;
              res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '1', 'Cache-Control': 'no-store' });
              res.end(JSON.stringify(err.data ?? { code: ErrorCode.SESSION_UNAVAILABLE, reason: 'store-error' }));
            },
          ),
        () => next(), // no session: nothing to lock
      );
    };
  }
}

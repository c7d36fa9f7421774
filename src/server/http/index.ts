/**
 * The HTTP surfaces of a `sessions()` instance, together: the token endpoint, the served script
 * (both hand out tickets, and renew the session cookie on `?renew=1`), and `httpLock()`. They reach
 * sessions only through the resolver, and write only through the session's runtime and the store hub.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventEmitter } from 'node:events';
import { ErrorCode, type Ticket } from '../../protocol.js';
import { asUnavailable, SessionInvalidError, SessionOptionsError, type SessionUnavailableError } from '../../errors.js';
import type { ServerContext } from '../context.js';
import { acquireWithin } from '../runtime/lock-wait.js';
import { holdTurn, SessionRuntime } from '../runtime/index.js';
import { log } from '../log.js';
import { audienceOf, isAllowedOrigin, originAllowed, requesterOrigin } from '../origin.js';
import type { Resolved, Resolver } from '../resolver.js';
import { sessionCookie } from '../session-id.js';
import { sessionTag } from '../invalidation.js';
import { clientScriptHandler, serveClientScript } from './client-script.js';
import { tokenEndpoint } from './token-endpoint.js';

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
    const requester = requesterOrigin(req);
    return requester !== undefined && isAllowedOrigin(requester, req, this.ctx.options) ? requester : undefined;
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
    const write = async () => {
      const loaded = await hub.read(sid, options.storeTimeout);
      if (!('record' in loaded)) throw new SessionInvalidError(loaded.invalid);
      const current = loaded.record;
      current.cookie = { ...current.cookie, expires } as typeof current.cookie;
      if ((await hub.write(sid, current, options.storeTimeout)) === 'destroyed') throw new SessionInvalidError('destroyed');
    };
    // Behind httpLock() this request already holds the session's lock, which every unit of the runtime
    // also needs: running through the runtime would wait for ourselves.
    if ((req as LockedRequest)[LOCK_HELD] === sid) await write();
    else {
      let failure: unknown;
      await SessionRuntime.of(hub, sid).task({
        lock: options.lock,
        timeoutMs: options.storeTimeout,
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
   */
  private async embedded(req: IncomingMessage, renew: boolean): Promise<{ ticket?: Ticket; setCookie?: string }> {
    const requester = this.trustedRequester(req);
    if (!this.ctx.sealer || requester === undefined) return {};
    return this.issue(req, requester, renew).catch(() => ({}));
  }

  /** See SessionServer.tokenHandler. */
  tokenHandler(path: string) {
    if (!this.ctx.sealer) throw new SessionOptionsError('socket.io-sessions: tickets need a "secret"');
    return tokenEndpoint(
      {
        originRefusal: (req) => (originAllowed(req, this.ctx.options) ? undefined : this.ctx.advice.originRefused(req).data),
        // A cookie is renewed only for a page that shows it is allowed (no cross-site renewal by an image tag).
        issue: (req, renew) => this.issue(req, audienceOf(req), renew && this.trustedRequester(req) !== undefined),
      },
      path,
    );
  }

  /** See SessionServer.clientScriptHandler. */
  clientScript(basePath: string) {
    return clientScriptHandler(basePath, (req, renew) => this.embedded(req, renew));
  }

  /** Serve the client script in front of `server`'s request listeners; returns a disposer. */
  serveClientScript(server: EventEmitter, basePath: string): () => void {
    return serveClientScript(server, basePath, (req, renew) => this.embedded(req, renew));
  }

  /** See SessionServer.httpLock. */
  httpLock() {
    const { lock, storeTimeout, handlerTimeout } = this.ctx.options;
    const { hub } = this.ctx;
    // With `lock`, the cross-node lock; without, the session's turn in its runtime (one node).
    const take = (sid: string) => (lock ? acquireWithin(lock, sid, Date.now() + storeTimeout) : holdTurn(hub, sid, Date.now() + storeTimeout, handlerTimeout));
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

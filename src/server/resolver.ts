/**
 * The one way from a request to its session, used by every entry point (handshake, token
 * endpoint, served script, cookie renewal, httpLock): request → credential (a ticket in the
 * handshake `auth`, or the signed cookie, a cutter, a parser) → session id → loaded session.
 * Outcomes are typed errors: SessionInvalidError (with its reason), SessionUnavailableError (the
 * store), OriginNotAllowedError (a cookie handshake from a page of another origin).
 */
import type { IncomingMessage } from 'node:http';
import { TICKET_AUTH_FIELD } from '../protocol.js';
import { describeThrown, SessionHandlerError, SessionInvalidError } from '../errors.js';
import type { ServerContext } from './context.js';
import { log } from './log.js';
import { audienceOf, originAllowed } from './origin.js';
import { corruptRecordError, SessionEntry } from './session-entry.js';
import { cookieNames, sessionIdFrom } from './session-id.js';
import { sessionTag } from './invalidation.js';
import type { SessionRecord } from './store.js';

/** A request's session: its id and either its stored record, or the live entry that already holds it. */
export interface Resolved {
  sid: string;
  record?: SessionRecord;
  entry?: SessionEntry;
  /** For a ticket: when it runs out (epoch ms). */
  ticketExpiresAt?: number;
  /** With `record`: the hub's retirement mark when its read began (see `StoreHub.retiredSince`). */
  readMark?: number;
}

export class Resolver {
  constructor(private readonly ctx: ServerContext) {}

  /** The session id a request's cookie (or cutter, parser) names. A throwing cutter/parser is the app's bug: reported, and no id. */
  async sessionId(req: IncomingMessage): Promise<string> {
    let found;
    try {
      found = await sessionIdFrom(req, this.ctx.options);
    } catch (err) {
      this.ctx.report(new SessionHandlerError('handler-error', `the cutter or parser option threw: ${describeThrown(err)}`, { cause: err }));
      found = { invalid: 'no-session-id' as const };
    }
    if ('sid' in found) return found.sid;
    if (found.invalid === 'no-session-id' && log.handshake.enabled) {
      log.handshake('no session id: no cookie named %o (cookies seen: %o)', this.ctx.options.name, cookieNames(req));
    }
    throw this.ctx.advice.invalid(found.invalid, req);
  }

  /**
   * A handshake's credential: a ticket in `auth` (it is bound to its page origin); otherwise the
   * cookie, after the Origin check. When a browser (its handshake has an Origin) sends both and they
   * name different sessions, the ticket is stale (the browser's session changed since it was minted: a
   * logout or login in another tab) and is refused, so the SDK fetches one for the session the cookie
   * names. A Node client (no Origin) that sends both chose them: its ticket decides.
   */
  private async handshakeId(req: IncomingMessage, auth: unknown): Promise<{ sid: string; ticketExpiresAt?: number }> {
    const ticket = auth !== null && typeof auth === 'object' ? (auth as Record<string, unknown>)[TICKET_AUTH_FIELD] : undefined;
    const { sealer, options } = this.ctx;
    if (ticket !== undefined && sealer) {
      const opened = sealer.open(ticket, audienceOf(req, options));
      if ('invalid' in opened) throw new SessionInvalidError(opened.invalid);
      if (req.headers.origin !== undefined && (await this.cookieNamesAnother(req, opened.sid))) throw new SessionInvalidError('ticket-session-mismatch');
      if (log.tickets.enabled) log.tickets('handshake with a ticket of %s', sessionTag(opened.sid));
      return { sid: opened.sid, ticketExpiresAt: opened.expiresAt };
    }
    if (!originAllowed(req, options, this.ctx)) {
      log.handshake('origin %o not allowed', req.headers.origin);
      throw this.ctx.advice.originRefused(req);
    }
    return { sid: await this.sessionId(req) };
  }

  /** Whether the request's own session cookie (signed with our secret) names another session than `sid`. */
  private async cookieNamesAnother(req: IncomingMessage, sid: string): Promise<boolean> {
    if (!req.headers.cookie) return false;
    const found = await sessionIdFrom(req, this.ctx.options).catch(() => undefined);
    return found !== undefined && 'sid' in found && found.sid !== sid;
  }

  /** The session of a handshake. */
  async handshake(req: IncomingMessage, auth: unknown): Promise<Resolved> {
    const { sid, ticketExpiresAt } = await this.handshakeId(req, auth);
    return { ...(await this.load(sid, true)), ticketExpiresAt };
  }

  /** The session of an HTTP request's cookie (token endpoint, served script, cookie renewal). */
  async request(req: IncomingMessage): Promise<Resolved> {
    return this.load(await this.sessionId(req), false);
  }

  /**
   * Load `sid`: the live entry when nothing can have changed it since; else the store (for a
   * handshake, the record an HTTP surface read a moment ago is carried over instead of a second read).
   */
  private async load(sid: string, forHandshake: boolean): Promise<Resolved> {
    const { hub, options } = this.ctx;
    const live = SessionEntry.of(hub, sid);
    if (live?.trustworthy && !hub.destroyed(sid)) return { sid, entry: live };
    const readMark = hub.retirementMark();
    const loaded = forHandshake ? await hub.readForHandshake(sid, options.storeTimeout) : await hub.readToCarry(sid, options.storeTimeout);
    if ('record' in loaded) return { sid, record: loaded.record, readMark };
    const tag = sessionTag(sid);
    log.handshake('session %s: %s', tag, loaded.invalid);
    if (loaded.invalid === 'corrupt') this.ctx.report(corruptRecordError(tag));
    const reason = loaded.invalid === 'not-found' && live?.expired() ? 'expired' : loaded.invalid;
    throw this.ctx.advice.invalid(reason);
  }
}

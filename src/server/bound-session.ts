/**
 * One socket's view of its session: loaded through the store's own `createSession` (so
 * save/reload/destroy/touch behave as in express-session), and saved by merging only the keys
 * this socket changed into the store's current copy, so a socket never overwrites newer HTTP
 * writes with stale data and never brings back a destroyed session.
 */
import type { IncomingMessage } from 'node:http';
import type { Session, SessionData } from 'express-session';
import type { Socket } from 'socket.io';
import type { InvalidReason } from '../protocol.js';
import { isExpired, type StoreGateway } from './store.js';
import type { Tombstones } from './invalidation.js';
import { sessionRoom } from './invalidation.js';

/** The session object handlers see as `socket.session`: an express-session `Session`. */
export type SocketSession = Session & Partial<SessionData>;

type SessionRequest = IncomingMessage & { session?: SocketSession; sessionID?: string; sessionStore?: unknown };

/** Top-level keys of the session data (the cookie belongs to HTTP) and their JSON, for change detection. */
type Snapshot = Map<string, string>;

function snapshot(data: object): Snapshot {
  const snap: Snapshot = new Map();
  for (const [key, value] of Object.entries(data)) {
    if (key === 'cookie' || typeof value === 'function') continue;
    const json = JSON.stringify(value);
    if (json !== undefined) snap.set(key, json);
  }
  return snap;
}

/** True when `a` is a later expiry than `b`. */
function laterExpiry(a: Date | string | number | null | undefined, b: Date | string | number | null | undefined): boolean {
  return a != null && b != null && new Date(a).getTime() > new Date(b).getTime();
}

function changedKeys(before: Snapshot, after: Snapshot): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key));
}

export class BoundSession {
  readonly room: string;
  /** What the store held for the keys we track, as of the last load or save. */
  private baseline: Snapshot = new Map();
  /** Set when the socket saw traffic since the last revalidation: only active sockets keep a session alive. */
  active = false;
  /** For a socket that connected with a ticket: when that ticket runs out (epoch ms). */
  ticketExpiresAt: number | undefined;
  /** Set once the socket was told its session is invalid: nothing is saved after that. */
  invalidated = false;
  /** When the browser's session cookie expires (epoch ms), as of the last HTTP write seen; undefined for a browser-session cookie. */
  private cookieExpires: number | undefined;
  /** The latest cookie expiry our own touches gave the session. */
  private touchedExpires: number | undefined;
  /** The expiries our touches wrote, newest last, to tell them apart from HTTP's in the record. */
  private readonly ownExpiries: number[] = [];
  /** The cookie expiry the client was last asked to renew, so it is asked once. */
  private renewalAsked: number | undefined;

  constructor(
    readonly socket: Socket,
    readonly sid: string,
    data: SessionData,
    private readonly gateway: StoreGateway,
    private readonly tombstones: Tombstones,
  ) {
    this.room = sessionRoom(sid);
    this.attach(data);
  }

  private get req(): SessionRequest {
    return this.socket.request as SessionRequest;
  }

  get session(): SocketSession {
    return this.req.session!;
  }

  private attach(data: SessionData): void {
    const req = this.req;
    req.sessionID = this.sid;
    req.sessionStore = this.gateway.store;
    this.noteCookie(data);
    this.gateway.store.createSession(req as never, data);
    this.baseline = snapshot(this.session);
  }

  /** A cookie expiry in the store that none of our touches wrote is the one HTTP last sent the browser. */
  private noteCookie(data: SessionData): void {
    const expires = data.cookie?.expires ? new Date(data.cookie.expires).getTime() : undefined;
    if (expires === undefined || !this.ownExpiries.includes(expires)) this.cookieExpires = expires;
  }

  /** Why the stored data cannot be used, if it cannot. */
  private invalidReason(data: SessionData | null): InvalidReason | undefined {
    if (this.tombstones.has(this.room)) return 'destroyed';
    if (!data) return this.session && isExpired(this.session as SessionData) ? 'expired' : 'not-found';
    return undefined; // expiry is the store's call, as in express-session
  }

  /** Replace `socket.session` with the store's current copy. Throws SessionUnavailableError. */
  async reload(): Promise<InvalidReason | undefined> {
    const data = await this.gateway.get(this.sid);
    const reason = this.invalidReason(data);
    if (!reason) this.attach(data!);
    return reason;
  }

  /**
   * Check the session still exists; extend its life in the store when the socket was active.
   * Throws SessionUnavailableError.
   */
  async revalidate(): Promise<InvalidReason | undefined> {
    const data = await this.gateway.get(this.sid);
    const reason = this.invalidReason(data);
    if (reason || !this.active) return reason;
    this.active = false;
    this.noteCookie(data!);
    this.session.touch();
    this.touchedExpires = this.session.cookie.expires?.getTime();
    if (this.touchedExpires !== undefined) this.ownExpiries.splice(0, this.ownExpiries.push(this.touchedExpires) - 8);
    await this.gateway.touch(this.sid, this.session as SessionData);
    return undefined;
  }

  /**
   * The browser's cookie expiry when it is within a quarter of its max age of running out (the
   * store lives on through our touches, the cookie does not): once per expiry.
   */
  cookieRenewalDue(now = Date.now()): number | undefined {
    const expires = this.cookieExpires;
    const maxAge = this.session?.cookie.originalMaxAge;
    if (expires === undefined || !maxAge || expires - now > maxAge / 4 || this.renewalAsked === expires) return undefined;
    this.renewalAsked = expires;
    return expires;
  }

  /**
   * Save the keys this socket changed, merged into the store's current copy; the reason when the
   * session is gone instead. Throws SessionUnavailableError. Keys the socket did not touch take the
   * store's value afterwards, so HTTP writes show up in `socket.session`.
   */
  async saveChanges(): Promise<InvalidReason | undefined> {
    if (this.invalidated) return undefined;
    const session = this.session as unknown as Record<string, unknown>;
    const current = snapshot(session);
    const changed = changedKeys(this.baseline, current);
    if (changed.length === 0) return undefined;
    const fresh = (await this.gateway.get(this.sid)) as (SessionData & Record<string, unknown>) | null;
    const reason = this.invalidReason(fresh);
    if (reason) return reason;
    for (const key of changed) {
      if (current.has(key)) fresh![key] = JSON.parse(current.get(key)!);
      else delete fresh![key];
    }
    // Stores that set their TTL from cookie.expires (connect-redis, whose touch leaves the record
    // as it was) must not be cut back to an older expiry than our touches gave the session.
    if (this.touchedExpires !== undefined && fresh!.cookie && laterExpiry(this.touchedExpires, fresh!.cookie.expires)) {
      fresh!.cookie = { ...fresh!.cookie, expires: new Date(this.touchedExpires) } as SessionData['cookie'];
    }
    await this.gateway.set(this.sid, fresh!);
    this.tombstones.wrote(this.room, this.sid);
    // A logout that landed while we were writing wins: destroy again what we just wrote.
    if (this.tombstones.has(this.room)) {
      await this.gateway.destroy(this.sid);
      return 'destroyed';
    }
    this.adopt(fresh!, current);
    return undefined;
  }

  /** Undo what a failed handler changed: put back the keys as last loaded or saved. */
  discardChanges(): void {
    const session = this.session as unknown as Record<string, unknown>;
    for (const key of changedKeys(this.baseline, snapshot(session))) {
      if (this.baseline.has(key)) session[key] = JSON.parse(this.baseline.get(key)!);
      else delete session[key];
    }
  }

  /** Take the written copy as the new baseline, and its values into the live session where the handler did not change them meanwhile. */
  private adopt(written: Record<string, unknown>, savedFrom: Snapshot): void {
    const session = this.session as unknown as Record<string, unknown>;
    const now = snapshot(session);
    const stored = snapshot(written);
    for (const key of new Set([...now.keys(), ...stored.keys()])) {
      if (now.get(key) !== savedFrom.get(key)) continue; // changed during the save: keep, it is saved next time
      if (stored.has(key)) session[key] = JSON.parse(stored.get(key)!);
      else delete session[key];
    }
    this.baseline = stored;
  }
}

/**
 * One loaded session in this process, shared by all of its sockets on every namespace: one copy
 * and its change tracker. Loaded through the store's own `createSession`, so save/reload/destroy/
 * touch behave as in express-session; the Session object lives as long as the entry, so every
 * reference handed out (`socket.session`, the `sconnection` argument) stays the session's, reloads
 * included.
 *
 * The session's runtime (runtime/index.ts) owns the copy, its sockets and timers; how the copy is
 * loaded, saved and revalidated is the runtime's (runtime/persistence.ts). The entry keeps the
 * express-session stand-in (EntryRequest, createSession, takeIn/adopt/replace) and the tracker glue.
 */
import type { Session, SessionData, Store } from 'express-session';
import type { InvalidReason } from '../protocol.js';
import { describeThrown, SessionInvalidError, SessionValueError } from '../errors.js';
import { ChangeTracker, putValue, type Changes } from './tracker.js';
import { log } from './log.js';
import { expiryOf, isSessionRecord, NO_MARK, type Live, type Loaded, type SessionRecord, type StoreHub, type WriteMark } from './store.js';
import type { LiveRecord } from './live-sessions.js';
import { sessionTag } from './invalidation.js';

/** The session object handlers see as `socket.session`: an express-session `Session`. */
export type SocketSession = Session & Partial<SessionData>;

/** What a shared copy needs from the runtime that serves it (runtime/index.ts): also its record in the hub's registry. */
export interface EntryHost extends LiveRecord {
  /** A per-connection socket's handler changed the session (`entry`, its copy) outside a unit of work (after an await). */
  changedOutside(entry: SessionEntry): void;
  /** Every socket of the session runs its handlers as units (per-message mode). */
  readonly perMessageOnly: boolean;
}

/** What express-session stores of a cookie (its Cookie's `data`): a stored cookie with these values is the Cookie's. */
const COOKIE_FIELDS = ['originalMaxAge', 'partitioned', 'priority', 'expires', 'secure', 'httpOnly', 'domain', 'path', 'sameSite'] as const;

/** The fields of express-session's Cookie that it stores, as a stored record's cookie may hold them. */
type CookieFields = { [field in (typeof COOKIE_FIELDS)[number]]?: unknown } & { expires?: Date | null };

/** How many of the stored fields `cookie` holds (each by name, as holdsCookie reads them). */
function definedFields(cookie: CookieFields): number {
  const { originalMaxAge, partitioned, priority, expires, secure, httpOnly, domain, path, sameSite } = cookie;
  return has(originalMaxAge) + has(partitioned) + has(priority) + has(expires) + has(secure) + has(httpOnly) + has(domain) + has(path) + has(sameSite);
}

const has = (value: unknown): number => (value === undefined ? 0 : 1);

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const NO_CONNECTION = Object.freeze({ encrypted: false });

/** Nothing to keep or to re-measure (adopt's common case: no unsaved change here). */
const NOTHING = new Map<string, string | undefined>();

/**
 * The request express-session binds the entry's Session to (`session.req`), made for it alone: never
 * the socket's request, which every namespace of one connection shares. createSession and
 * `session.reload()` assign its `session`, which the entry takes in.
 */
class EntryRequest {
  /**
   * No HTTP request is behind it: express-session's `generate(req)` (its `regenerate()`) reads
   * `req.headers` with `proxy: true`, and an app's `genid(req)` or cookie function may read them too.
   */
  readonly headers: Readonly<Record<string, string>> = NO_HEADERS;
  readonly connection = NO_CONNECTION;
  readonly socket = NO_CONNECTION;

  constructor(
    private readonly entry: SessionEntry,
    readonly sessionStore: Store,
  ) {}

  get sessionID(): string {
    return this.entry.sid;
  }

  /** (express-session's `regenerate()` assigns a new id to its request: the entry's session is destroyed by then, and stays so.) */
  set sessionID(_id: string) {}

  get session(): SocketSession {
    return this.entry.session;
  }

  set session(session: Session) {
    this.entry.takeIn(session);
  }
}

export class SessionEntry implements Live {
  private tagName: string | undefined;
  /** The express-session Session, kept for the entry's life (values are replaced in place on reload). */
  private raw!: Session & Record<string, unknown>;
  /** The Cookie express-session made for the copy (or took from the app, see checkCookie). */
  private goodCookie!: Session['cookie'];
  private tracker!: ChangeTracker<SocketSession>;
  /** The hub's mark when the copy was last known to equal the store's record; NO_MARK: not known. */
  private currentAt = NO_MARK;
  /** The runtime serving it, once shared (see `share`). */
  private host: EntryHost | undefined;
  /** Set when the session was found gone (its sockets told, by the runtime): nothing is saved after that. */
  invalid: InvalidReason | undefined;
  /** A socket of the session saw traffic since the last revalidation: only active sessions are kept alive. */
  active = false;
  /** When the browser's cookie expires (epoch ms), as of the last record not written by our touches. */
  private cookieExpires: number | undefined;
  /** The expiries our touches wrote, newest last, to tell them from HTTP's in the record. */
  private ownExpiries: number[] | undefined;
  private renewalAsked: number | undefined;
  /** The ISO string of a Cookie expiry (see sameExpiry), for the time it was made from. */
  private expiryIso: { time: number; iso: string } | undefined;
  /** In the hub's registry (shared by its sockets, its writes counted); only then is its copy ever trusted. */
  private tracked = false;

  /** The live entry of `sid` in this process, if any. */
  static of(hub: StoreHub, sid: string): SessionEntry | undefined {
    return hub.live.of(sid) as SessionEntry | undefined;
  }

  static byTag(hub: StoreHub, tag: string): SessionEntry | undefined {
    return hub.live.byTag(tag) as SessionEntry | undefined;
  }


  /** The session's name in logs, the destroyed set and notices (a hash of its id; computed when first needed). */
  get tag(): string {
    return (this.tagName ??= sessionTag(this.sid));
  }

  /** A new entry with the store's record, not shared yet (see `share`). */
  constructor(
    readonly hub: StoreHub,
    readonly sid: string,
    record: SessionRecord,
  ) {
    sessionFrom(hub.store, new EntryRequest(this, hub.store), record);
    // A per-connection handler's change made after the pending save ran (after an await) gets its own save.
    this.tracker = new ChangeTracker(this.raw, () => this.host?.changedOutside(this));
    this.noteCookie(record);
  }

  /**
   * It becomes the session's live copy, served by `host` (the runtime's `join`): registered in the
   * hub, so its writes are counted. Not trusted until next loaded: writes made between its load and
   * now were not counted.
   */
  share(host: EntryHost): void {
    this.host = host;
    if (this.tracked) return;
    this.tracked = true;
    this.currentAt = NO_MARK;
    this.hub.live.fresh(host);
  }

  /** A Session made by the store's own createSession from a record (its values are taken in, not the object). */
  private createSession(record: SessionRecord): Session & Record<string, unknown> {
    const req: { sessionID: string; sessionStore: Store; session?: Session } = { sessionID: this.sid, sessionStore: this.hub.store };
    sessionFrom(this.hub.store, req, record);
    return req.session as Session & Record<string, unknown>;
  }

  /** What handlers see: the session, tracked. */
  get session(): SocketSession {
    // (Read once by createSession itself, while the tracker is not there yet.)
    return this.tracker?.proxy ?? this.raw;
  }

  /** Its request's `session` was assigned (by createSession): the first time our Session; later (`session.reload()`) a new one to take in. */
  takeIn(session: Session): void {
    if (!this.raw) {
      this.raw = session as Session & Record<string, unknown>;
      this.goodCookie = session.cookie;
    }
    // A destroyed entry takes nothing in (`regenerate()` then assigns a fresh, cookie-less Session).
    else if (!this.invalid && isSessionRecord(session)) this.replace(session);
  }

  /** The copy equals the store's record, as far as this process can tell. */
  get current(): boolean {
    return this.tracked && this.hub.live.unchangedSince(this.sid, this.currentAt) && !this.expired();
  }

  /** Nothing can have changed the store's record since the copy was loaded (a process-local store that only we wrote). */
  get trustworthy(): boolean {
    return this.hub.local && this.current && !this.invalid;
  }

  /** The copy's cookie has run out: only the store can say whether the session still exists. */
  expired(now?: number): boolean {
    const expires = expiryOf(this.raw.cookie);
    return expires !== undefined && expires <= (now ?? Date.now()); // (the clock only for a cookie that expires)
  }

  /** The reason a read's answer means the session is gone, if it does. */
  goneReason(loaded: Loaded): InvalidReason | undefined {
    if ('record' in loaded) return this.refused(loaded.record);
    return loaded.invalid === 'not-found' && this.expired() ? 'expired' : loaded.invalid;
  }

  /**
   * 'corrupt' when express-session cannot make its Session from `record` (a cookie its Cookie throws
   * on: so at every read, not a store failure to retry, and never to be written back). Tried only
   * for a cookie other than the one the copy holds (that one was made into a Session already).
   */
  private refused(record: SessionRecord): InvalidReason | undefined {
    if (this.holdsCookie(record.cookie)) return undefined;
    try {
      // (Its cookie alone, in an object of its own: createSession puts a Cookie in place of the `cookie` it is given.)
      this.createSession({ cookie: record.cookie } as SessionRecord);
    } catch (err) {
      if (isCorruptRecord(err)) return 'corrupt';
      throw err;
    }
    return undefined;
  }

  /**
   * Take the store's record in, keeping the keys changed here and not yet saved, and `written` (keys
   * this process just wrote: the live objects stay, so references handed out stay the session's).
   * O(top-level keys): values are moved, not copied. `current`: the hub's mark at which the record is the store's.
   */
  adopt(record: SessionRecord, current: WriteMark | undefined, written?: Iterable<string>): void {
    const local = this.tracker.changes();
    const keep = local.size === 0 && written === undefined ? NOTHING : new Set([...local.keys(), ...(written ?? [])]);
    const raw = this.raw;
    // The cookie the copy holds is the one stored (usual between two events): the record's values are
    // taken as express-session's Session would take them, without a new Session and Cookie per load.
    const sameCookie = this.holdsCookie(record.cookie);
    const fresh = (sameCookie ? record : this.createSession(record)) as Record<string, unknown>;
    if (!sameCookie) this.noteCookie(fresh as SessionRecord); // (its cookie's expiry is a Date by now: no date string parsed again)
    if (!sameCookie) this.goodCookie = (fresh as unknown as Session).cookie;
    const taken: string[] = [];
    // A per-connection handler may hold an object of the session across an await: an unchanged one is kept (per-message: replaced, as documented).
    const keepHeld = this.host?.perMessageOnly === false;
    for (const key of Object.keys(raw)) {
      if (key === 'cookie' || keep.has(key) || Object.hasOwn(fresh, key)) continue;
      delete raw[key];
      taken.push(key);
    }
    for (const key of Object.keys(fresh)) {
      if (key !== 'cookie' && keep.has(key)) continue;
      // (What the Session constructor skips: names the Session has that are not data, its methods, `__proto__`.)
      if (sameCookie && (key === 'cookie' || (key in raw && !Object.prototype.propertyIsEnumerable.call(raw, key)))) continue;
      if (keepHeld && key !== 'cookie' && this.tracker.holdsSame(key, fresh[key])) continue;
      this.tracker.load(key, fresh[key]);
      taken.push(key);
    }
    const stored = local.size === 0 ? NOTHING : new Map<string, string | undefined>();
    for (const key of local.keys()) stored.set(key, Object.hasOwn(fresh, key) ? JSON.stringify(fresh[key]) : undefined);
    this.tracker.rebase(taken, stored);
    this.currentAt = current ?? NO_MARK;
  }

  /**
   * express-session's `session.reload()` made a new Session: take its values. What the running
   * handler changed is dropped, as express-session drops the request's own changes; the session's
   * other unsaved changes (earlier events of the batch, other sockets' writes) are someone else's:
   * they stay, to be saved. Called outside a handler, it drops nothing. While a write of the session
   * through this process is under way, the record read may predate it: nothing is taken in then,
   * the copy is only marked not current (the next event loads it).
   */
  replace(session: Session): void {
    this.tracker.dropRunning();
    if (this.hub.writesInFlight.running(this.tag) > 0) this.currentAt = NO_MARK;
    else this.adopt(session as unknown as SessionRecord, undefined);
  }

  /** Whether anything may have changed since the copy was loaded or saved. */
  get touched(): boolean {
    return this.tracker.touched;
  }

  /** Whether the copy differs from the store's record here (an object changed in place counts). */
  get changedHere(): boolean {
    return this.tracker.changes().size > 0;
  }

  /** A handler starts (`first`: the first since the copy was loaded or saved). */
  begin(first: boolean): void {
    this.tracker.begin(first);
  }

  /** The handler ended: the keys it assigned, deleted or read (undefined: none). */
  end(): ReadonlySet<string> | undefined {
    return this.tracker.end();
  }

  /** A value the running handler left in the session that cannot be stored (checked before any serialising). */
  unstorable(): SessionValueError | undefined {
    return this.tracker.unstorableKey() ?? this.checkCookie();
  }

  /**
   * `cookie` is HTTP's (never tracked), but a handler may replace it (`Object.assign(session, json)`
   * with a client's `cookie` key): a whole-copy write would then store a record express-session
   * cannot load (HTTP answers 500, the user cannot even log out). One express-session's Cookie takes
   * is made a Cookie; any other gives way to the Cookie the copy had, and is the error returned.
   */
  private checkCookie(): SessionValueError | undefined {
    const raw = this.raw;
    const cookie = raw.cookie as unknown;
    if (cookie === this.goodCookie) return undefined; // (the usual case: one compare)
    try {
      if (cookie === null || typeof cookie !== 'object') throw new TypeError('not an object');
      const made = this.createSession({ cookie } as unknown as SessionRecord).cookie;
      putValue(raw, 'cookie', made);
      this.goodCookie = made;
      return undefined;
    } catch (err) {
      putValue(raw, 'cookie', this.goodCookie);
      log.save('session %s: a cookie express-session cannot load was put in the session; the Cookie it had is kept', this.tag);
      return new SessionValueError('cookie', `express-session cannot make a Cookie of it (${describeThrown((err as Error).cause ?? err)})`);
    }
  }

  /** Put `key` back to the store's value (a per-message save left it out). */
  revert(key: string): void {
    this.tracker.revert(key);
  }

  /** Undo what the running handler changed. */
  rollback(): void {
    this.tracker.rollback();
  }

  /**
   * The running handler (its changes rolled back) is given up on; `pending` settles when it ends.
   * The objects it read are swapped for copies, and what is assigned outside a handler until then is
   * undone, unless a per-connection socket shares the session: its handlers may hold those objects
   * (they stay the session's), and such assignments are its handlers' (kept).
   */
  abandon(pending: PromiseLike<unknown>): void {
    const tracker = this.tracker;
    const perMessageOnly = this.host?.perMessageOnly ?? true;
    tracker.abandon(perMessageOnly);
    const settled = () => tracker.settledAbandoned(perMessageOnly);
    pending.then(settled, settled);
  }

  /** The hub's mark when the copy was last known to equal the store's record (NO_MARK: not known). */
  get mark(): WriteMark {
    return this.currentAt;
  }

  /** The copy is what the store holds as of `mark` (undefined: not known). */
  markCurrent(mark: WriteMark | undefined): void {
    this.currentAt = mark ?? NO_MARK;
  }

  /** Take the changes to save (see ChangeTracker.take); `restore` them if the save fails. */
  takeChanges(): ReturnType<ChangeTracker<SocketSession>['take']> {
    return this.tracker.take();
  }

  restore(changes: Changes): void {
    this.tracker.restore(changes);
  }

  /** The whole copy as the store would hold it. */
  storableCopy(): SessionRecord {
    this.checkCookie();
    return this.tracker.storableCopy() as SessionRecord;
  }

  /** Extend the session's cookie (express-session's `touch`), remembering the expiry our touch gave it. */
  touchCookie(): void {
    this.raw.touch();
    const touched = expiryOf(this.raw.cookie);
    if (touched === undefined) return;
    const own = (this.ownExpiries ??= []);
    own.splice(0, own.push(touched) - 8);
  }

  /** Drop the unsaved changes (of `keys` only, when given) and trust nothing: the next unit reloads. */
  discard(keys?: Iterable<string>): void {
    this.tracker.discard(keys);
    this.currentAt = NO_MARK;
  }

  /** Stores that take their TTL from `cookie.expires` must not be cut back below what our touches gave the session. */
  keepTouchedExpiry(record: SessionRecord): void {
    const touched = this.ownExpiries?.[this.ownExpiries.length - 1];
    const written = expiryOf(record.cookie);
    if (touched !== undefined && written !== undefined && touched > written) {
      record.cookie = { ...(record.cookie as object), expires: new Date(touched) } as SessionRecord['cookie'];
    }
  }

  /**
   * The stored cookie is what the Session's Cookie holds, field for field (the fields express-session
   * stores: its Cookie's `data`; the expiry compared as a time): nothing to make anew. A field this
   * list does not know makes the counts differ: then a new Cookie is made, as before.
   */
  private holdsCookie(stored: unknown): boolean {
    const cookie = this.raw.cookie as unknown as CookieFields | undefined;
    // (Only the store's Cookie is kept: a plain object a handler put in its place is made a Cookie again.)
    if (!cookie || Object.getPrototypeOf(cookie) === Object.prototype || stored === null || typeof stored !== 'object' || Object.getPrototypeOf(stored) !== Object.prototype) return false;
    const record = stored as CookieFields;
    // Field by field by name (one shape each side, read the same way at every load, unlike a keyed loop).
    if (
      record.originalMaxAge !== cookie.originalMaxAge ||
      record.secure !== cookie.secure ||
      record.httpOnly !== cookie.httpOnly ||
      record.path !== cookie.path ||
      record.domain !== cookie.domain ||
      record.sameSite !== cookie.sameSite ||
      record.partitioned !== cookie.partitioned ||
      record.priority !== cookie.priority ||
      !this.sameExpiry(record.expires, cookie.expires)
    ) {
      return false;
    }
    // The stored cookie has no field besides those (a field this list does not know makes the counts differ).
    let keys = 0;
    for (const _ in record) keys++;
    return keys === definedFields(cookie);
  }

  /**
   * A stored expiry (as JSON holds it: an ISO string, or null) is the Cookie's. The common case, the
   * ISO string of the Cookie's own time, is a string comparison (the Cookie's ISO form is kept for its
   * time: no date string parsed at every load); any other form is compared as a time.
   */
  private sameExpiry(stored: unknown, expires: Date | null | undefined): boolean {
    if (stored === null || stored === undefined || expires === null || expires === undefined) return stored === expires;
    const time = expires instanceof Date ? expires.getTime() : expiryOf({ expires });
    if (typeof stored === 'string') {
      if (this.expiryIso?.time !== time) this.expiryIso = Number.isFinite(time) ? { time: time!, iso: new Date(time!).toISOString() } : undefined;
      if (stored === this.expiryIso?.iso) return true;
    }
    return expiryOf({ expires: stored as string | number }) === time;
  }

  /** A cookie expiry in the store that none of our touches wrote is the one HTTP last sent the browser. */
  private noteCookie(record: SessionRecord): void {
    const expires = expiryOf(record.cookie);
    if (expires === undefined || !this.ownExpiries?.includes(expires)) this.cookieExpires = expires;
  }

  /**
   * The browser's cookie expiry when it is within a quarter of its max age of running out (the store
   * lives on through our touches, the cookie does not): once per expiry.
   */
  cookieRenewalDue(now = Date.now()): number | undefined {
    const expires = this.cookieExpires;
    const maxAge = this.raw.cookie?.originalMaxAge;
    if (expires === undefined || !maxAge || expires - now > maxAge / 4 || this.renewalAsked === expires) return undefined;
    this.renewalAsked = expires;
    return expires;
  }

  /** No socket left: its runtime lets go of it (a save already queued still runs), and it is never trusted again. */
  retire(): void {
    this.tracked = false;
  }
}

/** A record the store returned that is not a session: a typed error for `serror` (the id stays out of it). */
export function corruptRecordError(tag: string, cause?: unknown): SessionInvalidError {
  const error = new SessionInvalidError('corrupt', cause === undefined ? undefined : { cause });
  error.message = `session invalid (corrupt): the store returned a record for ${tag} that is not a session (not an object, no cookie, or a cookie express-session refuses)`;
  return error;
}

/**
 * The store's own `createSession` on `req`. A record it refuses (express-session's Cookie throws on a
 * `maxAge` that is not a number, say: another program wrote it) is a corrupt record, not a store
 * failure: SessionInvalidError 'corrupt', with what it threw as the cause.
 */
function sessionFrom(store: Store, req: object, record: SessionRecord): void {
  try {
    store.createSession(req as never, record);
  } catch (err) {
    throw new SessionInvalidError('corrupt', { cause: err });
  }
}

/** What {@link sessionFrom} throws for a record express-session refuses. */
export function isCorruptRecord(err: unknown): err is SessionInvalidError {
  return err instanceof SessionInvalidError && err.reason === 'corrupt';
}

/**
 * What the SDK does when the server says the session is invalid. The first time after a good
 * connection it reconnects once (the cookie may have changed: a login regenerated it). When the
 * session ended mid-connection it allows one more, later try: a login's `regenerate()` destroys
 * the old session before the response with the new cookie reaches the browser. When still
 * invalid, it reloads the page (at most `maxReloads` times per `reloadWindow`, remembered
 * in sessionStorage so reloads themselves cannot loop), calls the app's handler, or stops.
 */
export type InvalidAction = 'reconnect' | 'reload' | 'handler' | 'stop';

export type OnInvalid<Ctx> = 'reload' | 'none' | ((ctx: Ctx) => void);

const STORAGE_KEY = 'socket.io-sessions:reloads';

/**
 * This tab's reloads within the window (sessionStorage; unreadable or corrupt counts as none). An entry
 * that is no number is out of the window (`now - t` is NaN, or about `now`), or (a number in a string)
 * counts as that time: never a reload more.
 */
export function recentReloads(windowMs: number, now: number): number[] {
  try {
    return (JSON.parse(sessionStorage.getItem(STORAGE_KEY)!) as number[]).filter((t) => now - t < windowMs && t <= now);
  } catch {
    return [];
  }
}

/**
 * The shortest window reloads are counted in (ms): a shorter one (0, or less than a reload takes)
 * would forget each reload before the next and let them loop without end.
 */
export const MIN_RELOAD_WINDOW = 10_000;

/**
 * Whether this tab may reload once more for an invalid session (at most `maxReloads` per
 * `windowMs`, at least {@link MIN_RELOAD_WINDOW}, counted in sessionStorage), and if so, count it: the guard `onInvalid: 'reload'`
 * uses, for an `onInvalid` function (or another tab's SDK) that reloads. False when it cannot be
 * remembered (no sessionStorage, sandboxed iframe, quota): a reload that is not counted could loop.
 */
export function takeReload(maxReloads = 3, windowMs = 60_000, now = Date.now()): boolean | undefined {
  const recent = recentReloads(Math.max(windowMs, MIN_RELOAD_WINDOW), now);
  try {
    return recent.length < maxReloads && (sessionStorage.setItem(STORAGE_KEY, JSON.stringify([...recent, now])), true);
  } catch {
    return false;
  }
}

/** (`_` fields: the SDK's link holds them, and the minified files shorten `_` names.) */
export interface PolicyInput<Ctx> {
  /** Invalid answers in a row since the last successful connection. */
  _streak: number;
  /** The first of them was pushed to a connected socket (logout, login, expiry), not a refused handshake. */
  _fromConnected?: boolean;
  _onInvalid: OnInvalid<Ctx>;
  /** @default 3 (takeReload's) */
  _maxReloads?: number;
  /** @default 60000 (takeReload's) */
  _reloadWindow?: number;
}

/** Decide, without side effects but for the reload count, what to do with this invalid answer. */
export function decideInvalid<Ctx>({ _streak, _fromConnected, _onInvalid: onInvalid, _maxReloads: maxReloads, _reloadWindow: reloadWindow }: PolicyInput<Ctx>): InvalidAction {
  if (_streak <= 1 || (_streak === 2 && _fromConnected)) return 'reconnect';
  if (typeof onInvalid === 'function') return 'handler';
  // A page to reload: not in Node or a worker (no `location`, or none with `reload`).
  return onInvalid === 'reload' && (globalThis.location as Partial<Location> | undefined)?.reload && takeReload(maxReloads, reloadWindow) ? 'reload' : 'stop';
}

/**
 * How long to wait before that reconnect: none after a refused handshake; a moment after a
 * mid-connection invalid, and longer for the second try, for a login response still in flight.
 */
export function reconnectDelay(streak: number, fromConnected: boolean): number {
  if (!fromConnected) return 0;
  return streak <= 1 ? 250 : 1500;
}

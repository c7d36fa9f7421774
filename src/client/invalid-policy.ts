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

function storage(): Storage | undefined {
  try {
    return typeof sessionStorage === 'undefined' ? undefined : sessionStorage;
  } catch {
    return undefined; // sandboxed iframes and some privacy modes throw on access
  }
}

/** Reloads done in this tab within the window; false when nothing can be remembered. */
export function recentReloads(windowMs: number, now = Date.now()): number[] | false {
  const store = storage();
  if (!store) return false;
  try {
    const parsed: unknown = JSON.parse(store.getItem(STORAGE_KEY) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter((t): t is number => typeof t === 'number' && now - t < windowMs && t <= now) : [];
  } catch {
    return [];
  }
}

/** Remember a reload; false when it cannot be remembered (then the caller must not reload). */
export function rememberReload(windowMs: number, now = Date.now()): boolean {
  const store = storage();
  const recent = recentReloads(windowMs, now);
  if (!store || recent === false) return false;
  try {
    store.setItem(STORAGE_KEY, JSON.stringify([...recent, now]));
    return true;
  } catch {
    return false;
  }
}

export interface PolicyInput<Ctx> {
  /** Invalid answers in a row since the last successful connection. */
  streak: number;
  /** The first of them was pushed to a connected socket (logout, login, expiry), not a refused handshake. */
  fromConnected: boolean;
  onInvalid: OnInvalid<Ctx>;
  maxReloads: number;
  reloadWindow: number;
  /** Whether `location.reload()` exists (not in Node or workers). */
  canReload: boolean;
}

/** Decide, without side effects but for the reload count, what to do with this invalid answer. */
export function decideInvalid<Ctx>({ streak, fromConnected, onInvalid, maxReloads, reloadWindow, canReload }: PolicyInput<Ctx>): InvalidAction {
  if (streak <= 1 || (streak === 2 && fromConnected)) return 'reconnect';
  if (typeof onInvalid === 'function') return 'handler';
  if (onInvalid !== 'reload' || !canReload) return 'stop';
  const recent = recentReloads(reloadWindow);
  if (recent === false || recent.length >= maxReloads) return 'stop';
  return rememberReload(reloadWindow) ? 'reload' : 'stop';
}

/**
 * How long to wait before that reconnect: none after a refused handshake; a moment after a
 * mid-connection invalid, and longer for the second try, for a login response still in flight.
 */
export function reconnectDelay(streak: number, fromConnected: boolean): number {
  if (!fromConnected) return 0;
  return streak <= 1 ? 250 : 1500;
}

/**
 * What the SDK does when the server says the session is invalid. The first time after a good
 * connection it reconnects once (the cookie may have changed: a login regenerated it); when that
 * is invalid too, it reloads the page (at most `maxReloads` times per `reloadWindow`, remembered
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
  onInvalid: OnInvalid<Ctx>;
  maxReloads: number;
  reloadWindow: number;
  /** Whether `location.reload()` exists (not in Node or workers). */
  canReload: boolean;
}

/** Decide, without side effects but for the reload count, what to do with this invalid answer. */
export function decideInvalid<Ctx>({ streak, onInvalid, maxReloads, reloadWindow, canReload }: PolicyInput<Ctx>): InvalidAction {
  if (streak <= 1) return 'reconnect';
  if (typeof onInvalid === 'function') return 'handler';
  if (onInvalid !== 'reload' || !canReload) return 'stop';
  const recent = recentReloads(reloadWindow);
  if (recent === false || recent.length >= maxReloads) return 'stop';
  return rememberReload(reloadWindow) ? 'reload' : 'stop';
}

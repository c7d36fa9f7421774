/**
 * Waiting for the session's cross-node lock (the `lock` option) with a deadline: a lock that cannot
 * be had in time is given up (and released if it comes later), a release that hangs is left behind.
 * So a frozen lock service never holds a session's queue for longer than the deadlines.
 */
import { SessionUnavailableError } from '../../errors.js';
import type { UnavailableReason } from '../../protocol.js';
import type { SessionLock } from '../lock.js';
import { RETRY_AFTER_MS } from '../store.js';
import { log } from '../log.js';

export function unavailable(reason: UnavailableReason, cause?: unknown): SessionUnavailableError {
  return new SessionUnavailableError(reason, reason === 'lock-timeout' ? 200 : RETRY_AFTER_MS, cause === undefined ? undefined : { cause });
}

/** Wait for `lock` until `deadline` at most; a lock granted after that is released at once. */
export async function acquireWithin(lock: SessionLock, sid: string, deadline: number): Promise<() => Promise<void>> {
  const wait = deadline - Date.now();
  if (wait <= 0) throw unavailable('lock-timeout');
  const pending = Promise.resolve().then(() => lock.acquire(sid));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable('lock-timeout')), wait);
  });
  try {
    return await Promise.race([pending, late]);
  } catch (err) {
    pending.then((release) => releasing(release).catch(() => undefined), () => undefined);
    log.lock('lock not had in %d ms: %O', wait, err);
    throw err instanceof SessionUnavailableError ? err : unavailable('store-error', err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The release's outcome as a promise, also when it throws instead of rejecting or returns no promise (an app's
 * SessionLock): never a throw into the runtime's path (an unhandled rejection there ended the process).
 */
export function releasing(release: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => resolve(release()));
}

/** Release, waiting `timeoutMs` at most (a lock service that hangs does not hold the queue; the lease ends the lock). */
export async function releaseWithin(release: () => Promise<void>, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([releasing(release).catch((err: unknown) => log.lock('release failed: %O', err)), late]);
  } finally {
    clearTimeout(timer);
  }
}

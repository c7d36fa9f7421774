/**
 * The units of work on a session that are not events: saves, revalidation. Each runs in the
 * session's runtime (one at a time per session in the process) holding the session lock when there is
 * one; what it finds out is acted on here: a session gone invalidates its sockets, a store failure
 * is reported and told to them (and a save is tried again), a cookie about to run out is renewed.
 */
import { CredentialEvents } from '../protocol.js';
import { asUnavailable, SessionUnavailableError } from '../errors.js';
import type { ServerContext } from './context.js';
import { SessionRuntime, settleRuntimes } from './runtime/index.js';
import type { SessionEntry } from './session-entry.js';
import { revalidate, save } from './runtime/work.js';
import { RETRY_AFTER_MS } from './store.js';
import { Wheel } from './wheel.js';

/** How many times a failed save is tried again (with RETRY_AFTER_MS between). */
const SAVE_RETRIES = 5;

function failed(entry: SessionEntry, ctx: ServerContext, err: unknown): void {
  const error = asUnavailable(err);
  ctx.report(error);
  for (const socket of entry.sockets) socket.unavailable(error);
}

/** Save `entry`'s changes now (in its runtime's queue). Resolves when done; failures are reported and retried. */
export function saveTask(entry: SessionEntry, ctx: ServerContext, attempt = 0): Promise<void> {
  const { options, hub } = ctx;
  const retry = (error: unknown) => {
    failed(entry, ctx, error);
    if (error instanceof SessionUnavailableError && attempt < SAVE_RETRIES && !entry.invalid) {
      setTimeout(() => void saveTask(entry, ctx, attempt + 1), RETRY_AFTER_MS).unref?.();
    }
  };
  return SessionRuntime.of(hub, entry.sid).task({
    lock: options.lock,
    timeoutMs: options.storeTimeout,
    failed: retry,
    async run() {
      try {
        // A copy loaded at connect is trusted only when no other process can write the store.
        const reason = await save(entry, { trusted: hub.local, timeoutMs: options.storeTimeout, refused: (error) => ctx.report(error) });
        if (reason) entry.invalidate(reason);
      } catch (err) {
        retry(err);
      }
    },
  });
}

/**
 * Save every pending change now (per-connection saves waiting for `saveDelay`), and resolve once
 * all the work queued so far on the sessions of this process has run.
 */
export async function flush(ctx: ServerContext): Promise<void> {
  for (const live of ctx.hub.live.all()) {
    const entry = live as SessionEntry;
    if (entry.saveTimer === undefined) continue;
    clearTimeout(entry.saveTimer);
    entry.saveTimer = undefined;
    void saveTask(entry, ctx);
  }
  await settleRuntimes(ctx.hub);
}

/** Check `entry` every `revalidateInterval` while it has sockets (on the server's wheel: one timer for all sessions). */
export function keepChecking(entry: SessionEntry, ctx: ServerContext): void {
  if (!ctx.wheel || entry.wheel) return;
  entry.wheel = ctx.wheel;
  ctx.wheel.add(entry);
}

/** The revalidation wheel of a server (none when `revalidateInterval` is 0). */
export function revalidationWheel(ctx: Omit<ServerContext, 'wheel'>): Wheel<SessionEntry> | undefined {
  const { revalidateInterval } = ctx.options;
  return revalidateInterval > 0 ? new Wheel<SessionEntry>(revalidateInterval, (entry) => void revalidateTask(entry, ctx as ServerContext)) : undefined;
}

function revalidateTask(entry: SessionEntry, ctx: ServerContext): Promise<void> {
  const { options, hub } = ctx;
  return SessionRuntime.of(hub, entry.sid).task({
    lock: options.lock,
    timeoutMs: options.storeTimeout,
    failed: (error) => failed(entry, ctx, error),
    async run() {
      try {
        const reason = await revalidate(entry, options.storeTimeout);
        if (reason) return entry.invalidate(reason);
      } catch (err) {
        return failed(entry, ctx, err);
      }
      const renewBy = entry.cookieRenewalDue();
      if (renewBy !== undefined) for (const socket of entry.sockets) socket.emit(CredentialEvents.RENEW_COOKIE, { expiresAt: renewBy });
    },
  });
}

/**
 * The runtime's units of work that are not events: saves (with retry), revalidation, flush. Each
 * runs in the session's queue (one at a time per session in the process) holding the session lock
 * when there is one; what it finds out is acted on here: a session gone invalidates its sockets, a
 * store failure is reported and told to them (and a save is tried again), a cookie about to run out
 * is renewed.
 */
import { CredentialEvents } from '../../protocol.js';
import { asUnavailable, SessionHandlerError, SessionUnavailableError } from '../../errors.js';
import type { SessionServerError } from '../../errors.js';
import type { ResolvedOptions } from '../options.js';
import { RETRY_AFTER_MS, StoreHub } from '../store.js';
import { Wheel } from '../wheel.js';
import { log } from '../log.js';
import { runtimesOf, settleRuntimes, SessionRuntime } from './index.js';
import { revalidate, saved } from './persistence.js';
import type { SessionEntry } from '../session-entry.js';
import { LateCopies } from './copies.js';

/** What the tasks need of their `sessions()` instance (its ServerContext, context.ts). */
export interface TaskContext {
  readonly options: ResolvedOptions;
  readonly hub: StoreHub;
  /** `serror`. */
  report(error: SessionServerError): void;
}

/** The save waiting in its session's queue of a copy that is not the session's live one (a retired copy's late change): one at most, as for the live copy. */
const copiesWaiting = new LateCopies<SessionEntry, { promise?: Promise<void> }>();

/** How many times a failed save is tried again (with RETRY_AFTER_MS between). */
const SAVE_RETRIES = 5;

/** A task failed for the store: reported once (`serror`), and each socket is told. */
function failed(runtime: SessionRuntime, ctx: TaskContext, err: unknown): void {
  const error = asUnavailable(err);
  ctx.report(error);
  for (const socket of runtime.sockets) socket.unavailable(error, true);
}

/**
 * Save the session's changes now (in its queue). Resolves when done; failures are reported and retried.
 * One save of the session's copy waits in the queue at most: a save asked for while one waits is that one.
 */
export function saveTask(runtime: SessionRuntime, ctx: TaskContext, entry = runtime.entry, attempt = 0): Promise<void> {
  if (!entry) return Promise.resolve();
  const live = entry === runtime.entry;
  const ahead = live ? runtime.saveWaiting?.promise : copiesWaiting.get(entry)?.promise;
  if (ahead) return ahead;
  const { options, hub } = ctx;
  const waiting: { promise?: Promise<void> } = {};
  const started = () => {
    if (live) runtime.saveWaiting === waiting && (runtime.saveWaiting = undefined);
    else if (copiesWaiting.get(entry) === waiting) copiesWaiting.delete(entry);
  };
  const retry = (error: unknown) => {
    failed(runtime, ctx, error);
    if (error instanceof SessionUnavailableError && attempt < SAVE_RETRIES && !entry.invalid) {
      setTimeout(() => {
        // Not once no instance guards the store any more (all closed, their sockets gone): a logout
        // landing between the retry's read and its write would be undone (invariant 1). (Its failure was reported.)
        if (guarded(ctx)) void saveTask(runtime, ctx, entry, attempt + 1);
        else log.save('%s: a failed save is not retried: no instance guards the store any more', entry.tag);
      }, RETRY_AFTER_MS).unref?.();
    }
  };
  if (live) runtime.saveWaiting = waiting;
  else copiesWaiting.set(entry, waiting);
  return (waiting.promise = runtime.task({
    lock: options.lock,
    timeoutMs: options.storeTimeout,
    failed: (error) => {
      started();
      retry(error);
    },
    async run() {
      started();
      dueNoMore(entry); // (this save takes what a save due later would have)
      try {
        // A copy loaded at connect is trusted only when no other process can write the store.
        const reason = await saved(entry, hub.local, options.storeTimeout, ctx);
        if (reason) runtime.invalidate(reason, entry);
      } catch (err) {
        retry(err);
      }
    },
  }));
}

/**
 * httpLock's turn came to a request (the session's turn in this process, or the cross-node lock):
 * what this process's copy holds that the store does not (changed outside a handler, by an
 * `sconnection` listener or a timer after an await; a per-connection change waiting for `saveDelay`)
 * is saved first, so that the request reads it and its own write comes after it. Saved later, it
 * went over the request's newer write of the same key. A store failure is reported, and the request
 * goes on with the store as it is.
 */
export async function saveBeforeRequest(runtime: SessionRuntime, ctx: TaskContext): Promise<void> {
  // (Never rejects: the lock's holder must always get to its release.)
  await saveCopiesBeforeRequest(ctx, runtime.sid);
  let pending = false;
  try {
    const entry = runtime.entry;
    if (!entry || entry.invalid || !entry.changedHere) return;
    pending = runtime.takeSaveSoon();
    const reason = await saved(entry, ctx.hub.local, ctx.options.storeTimeout, ctx);
    if (reason) runtime.invalidate(reason, entry);
  } catch (err) {
    failed(runtime, ctx, err);
    if (pending) saveSoon(runtime, ctx); // the per-connection save it took is due again (the changes stay, to be saved)
  }
}

/** A per-connection change: saved within `saveDelay` (one pending save per session, whatever its sockets). */
export function saveSoon(runtime: SessionRuntime, ctx: TaskContext): void {
  runtime.saveSoon(ctx.options.saveDelay, () => void saveTask(runtime, ctx));
}

/**
 * Copies that are not their session's live one, changed after their socket left (a handler going on
 * after an await), with their save due (see {@link saveCopySoon}).
 */
const copiesDue = new LateCopies<SessionEntry, { timer: ReturnType<typeof setTimeout>; ctx: TaskContext; hold: StoreHub }>();

/** Copies changed after no instance guarded their store any more: reported once each. */
const copiesRefused = new WeakSet<SessionEntry>();

/** Some `sessions()` instance still guards the store's writes and destroys (its hub is in use). */
const guarded = (ctx: TaskContext): boolean => StoreHub.of(ctx.hub.store) !== undefined;

/**
 * A change to a copy that is not its session's live one (its socket left, maybe it retired): saved
 * within `saveDelay` as a per-connection change is, one pending save per copy, in the session's
 * queue (so a handler making many changes, or a store that fails, costs one save, not one per change).
 */
export function saveCopySoon(ctx: TaskContext, entry: SessionEntry): void {
  if (copiesDue.has(entry)) return;
  const { store } = ctx.hub;
  if (!guarded(ctx)) {
    // Every instance on the store closed and its sockets left: the store's writes and destroys are
    // no longer guarded, and a logout landing between the save's read and its write would be undone
    // (invariant 1). (With another instance open on the store, its guard covers the save.) Told once per copy.
    if (!copiesRefused.has(entry)) ctx.report(new SessionHandlerError('handler-error', 'a handler changed the session after close() and after its socket left: the change is not saved'));
    copiesRefused.add(entry);
    return;
  }
  // (Not unref'd, as the live copy's save timer is not: a process ending within saveDelay saves it first.)
  const timer = setTimeout(() => saveCopyNow(entry), ctx.options.saveDelay);
  // The store stays guarded until the save ended, also when the instance closes meanwhile.
  copiesDue.set(entry, { timer, ctx, hold: StoreHub.acquire(store) });
}

/** A save of `entry` runs now: one that was due later is not (its timer and hold are given back). */
function dueNoMore(entry: SessionEntry): void {
  const due = copiesDue.get(entry);
  if (!due) return;
  copiesDue.delete(entry);
  clearTimeout(due.timer);
  due.hold.release();
}

function saveCopyNow(entry: SessionEntry): void {
  const due = copiesDue.get(entry);
  if (!due) return;
  copiesDue.delete(entry);
  clearTimeout(due.timer);
  void saveTask(SessionRuntime.of(due.ctx.hub, entry.sid), due.ctx, entry).finally(() => due.hold.release());
}

/**
 * httpLock's turn came to a request: the changes of copies of its session made after their socket
 * left (waiting out `saveDelay`) are saved first, as the live copy's are (see {@link saveBeforeRequest}).
 * One that fails is due again.
 */
export async function saveCopiesBeforeRequest(ctx: TaskContext, sid: string): Promise<void> {
  // Due (waiting out saveDelay), or queued behind the turn the request holds (which would then write
  // them over the request's newer write): saved here; a queued save then finds nothing left to write.
  // (Never rejects.)
  // (Only this session's copies are looked at: the others' cost its requests nothing. None at all, the usual case: nothing made.)
  if (copiesDue.size === 0 && copiesWaiting.size === 0) return;
  const copies = new Set([...copiesDue.of(sid), ...copiesWaiting.of(sid)].filter((entry) => entry.hub === ctx.hub));
  for (const entry of copies) {
    const due = copiesDue.get(entry);
    copiesDue.delete(entry);
    if (due) clearTimeout(due.timer);
    try {
      const reason = await saved(entry, ctx.hub.local, ctx.options.storeTimeout, ctx);
      if (reason) SessionRuntime.find(ctx.hub, sid)?.invalidate(reason, entry);
    } catch (err) {
      ctx.report(asUnavailable(err));
      if (due) saveCopySoon(due.ctx, entry); // (a queued one retries by itself)
    } finally {
      due?.hold.release();
    }
  }
}

/**
 * Save every pending change now (per-connection saves waiting for `saveDelay`, those of copies whose
 * socket left), and resolve once all the work queued so far on the sessions of this process has run.
 */
export async function flush(ctx: TaskContext): Promise<void> {
  for (const [entry, due] of copiesDue.entries()) if (due.ctx.hub === ctx.hub) saveCopyNow(entry);
  // (Also a copy whose save failed and waits for its retry: its changes were given back to it, `touched`.)
  for (const runtime of [...runtimesOf(ctx.hub)]) if (runtime.takeSaveSoon() || runtime.entry?.touched) void saveTask(runtime, ctx);
  // Awaited by an app shutting down: the deadlines of the store calls it waits for are unref'd timers, and a hung
  // store may hold nothing else, so the process would end with flush() pending and the lost save never reported.
  // Held until it settles (within those deadlines).
  const hold = setInterval(() => undefined, 60_000);
  try {
    await settleRuntimes(ctx.hub);
  } finally {
    clearInterval(hold);
  }
}

/** The revalidation wheel of a server (none when `revalidateInterval` is 0). */
export function revalidationWheel(ctx: TaskContext): Wheel<SessionRuntime> | undefined {
  const { revalidateInterval } = ctx.options;
  const visit = (runtime: SessionRuntime) => {
    runtime.dropDisconnected();
    void revalidateTask(runtime, ctx);
  };
  return revalidateInterval > 0 ? new Wheel<SessionRuntime>(revalidateInterval, visit) : undefined;
}

function revalidateTask(runtime: SessionRuntime, ctx: TaskContext): Promise<void> {
  const { options } = ctx;
  return runtime.task({
    lock: options.lock,
    timeoutMs: options.storeTimeout,
    failed: (error) => failed(runtime, ctx, error),
    async run() {
      const entry = runtime.entry;
      if (!entry) return;
      try {
        const reason = await revalidate(entry, options.storeTimeout);
        if (reason) return runtime.invalidate(reason, entry);
      } catch (err) {
        return failed(runtime, ctx, err);
      }
      // An object a per-connection handler changed in place (through a reference held across an await)
      // marks nothing: the revalidation finds it, and it is saved within saveDelay from here.
      if (!runtime.perMessageOnly && entry.changedHere) saveSoon(runtime, ctx);
      const renewBy = entry.cookieRenewalDue();
      if (renewBy !== undefined) for (const socket of runtime.sockets) socket.emit(CredentialEvents.RENEW_COOKIE, { expiresAt: renewBy });
    },
  });
}

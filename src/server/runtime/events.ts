/**
 * Per-message events as the runtime's work: each call of an app's listener is an EventUnit (its
 * arguments, its held ack, its deadline from its arrival), made by the socket's binding
 * (connection.ts) where socket.io calls the listener; the runtime (index.ts) runs the waiting units
 * of a session and instance as one batch: load (only if something may have changed the copy), each
 * handler in turn, one save, then the acks. What is awaited is only what is pending: the store, an
 * async handler.
 *
 * Every emit that asks for an ack is answered exactly once (invariant 7): by the handler's first ack,
 * sent after the save, or by one {@link EmitNotice} as the ack's only argument when the event was not
 * run, its handler failed, or its changes could not be saved.
 */
import type { Socket } from 'socket.io';
import { asUnavailable, describeThrown, SessionHandlerError, type SessionServerError, type SessionUnavailableError, type SessionValueError } from '../../errors.js';
import { ErrorCode, NOTICE_FIELD, type EmitNotice, type InvalidReason, type NoticeReason } from '../../protocol.js';
import type { ResolvedOptions } from '../options.js';
import { unavailable } from './lock-wait.js';
import { refresh, save, type Outcome } from './persistence.js';
import type { SessionEntry } from '../session-entry.js';

type Listener = (...args: unknown[]) => unknown;
type Ack = (...args: unknown[]) => void;

/** Where an event came from: its socket's binding (connection.ts). */
export interface EventSource {
  readonly socket: Socket;
  /** The session copy the socket is bound to. */
  readonly entry: SessionEntry;
  /** Its `sessions()` instance's options: its storeTimeout, handlerTimeout and lock are the event's. */
  readonly options: ResolvedOptions;
  readonly gone: boolean;
  /** The event was not run for a store failure: the socket's status push (and `serror`, once per tick). */
  unavailable(error: SessionUnavailableError): void;
  /** A handler threw (or its changes could not be saved): report it. */
  report(error: SessionServerError): void;
  /** A unit of this socket finished (ran, failed or was dropped). */
  settled(unit: EventUnit): void;
  /** The listeners of `event` registered now, each with what is registered for it (see {@link EventUnit.run}). */
  listenersNow(event: string): EventListenerEntry[];
}

/** The notice answering an emit that will not get its ack, typed by why (see {@link NoticeReason}). */
export function emitNotice(reason: NoticeReason, extra: Pick<EmitNotice, 'retryAfter' | 'key'> = {}): { [NOTICE_FIELD]: EmitNotice } {
  return { [NOTICE_FIELD]: { code: noticeCode(reason), reason, ...extra } };
}

function noticeCode(reason: NoticeReason): ErrorCode {
  if (reason === 'session-ended') return ErrorCode.SESSION_INVALID;
  if (reason === 'handler-error' || reason === 'handler-timeout' || reason === 'not-storable' || reason === 'event-refused') return ErrorCode.EVENT_FAILED;
  return ErrorCode.SESSION_UNAVAILABLE;
}

/** Retry hint of a queue-full notice: the queue drains at the handlers' pace, not the store's. */
export const QUEUE_FULL_RETRY_MS = 1000;

/** Answer a packet's ack (its last argument, when the client asked for one) with a notice. */
export function noticePacket(args: unknown[], reason: NoticeReason, extra?: Pick<EmitNotice, 'retryAfter' | 'key'>): void {
  const ack = args[args.length - 1];
  if (typeof ack === 'function') (ack as Ack)(emitNotice(reason, extra));
}

/**
 * The listener of a unit whose packet came when no listener of its event was registered, while earlier events of
 * its socket waited their turn (connection.ts): its unit goes to the listeners registered at its turn.
 */
export const NOT_YET: Listener = () => undefined;

/** A further listener of the same event (and the same emit) that runs in its unit. */
export interface EventListenerEntry {
  listener: Listener;
  /** What is registered for it (our wrapper): checked and taken off by identity, never by the app's function. */
  wrapper: Listener;
  once: boolean;
}

/**
 * One event: the call of its listener (of all its listeners, when the emit asked for an ack: they
 * share that ack, so they succeed or fail as one, and the emit gets one answer).
 */
export class EventUnit {
  /** The handler's first ack (a second one is ignored). */
  private acked: unknown[] | undefined;
  /** Ran and saved: an ack the handler sends later goes straight out. */
  private saved = false;
  /** The client's ack was called (with the handler's ack or a notice): never again. */
  private answered = false;
  private done = false;
  /** Its handler ran in its batch and its changes are to be saved (then it is acked). */
  toSave = false;
  /** The session keys its handler assigned, deleted or read (a save that leaves one out fails it). */
  touched: ReadonlySet<string> | undefined = undefined;
  /** The event's other listeners, for an emit with an ack (see {@link join}). */
  private also: EventListenerEntry[] | undefined;
  /** Its run began: no listener joins it any more. */
  started = false;
  constructor(
    readonly source: EventSource,
    readonly deadline: number,
    private readonly listener: Listener,
    private readonly args: unknown[],
    private readonly ack: Ack | undefined,
    /** The event whose listener it is (it runs only if `wrapper` is still registered for it then). */
    private readonly event: string,
    /** What is registered for the listener (our wrapper of it; the app may register its function more than once). */
    private readonly wrapper: Listener,
    /** A `once` listener: taken off when it runs (or when the unit ends without running). */
    private readonly once = false,
  ) {}

  /**
   * The options of the `sessions()` instance it came from. Only units with the same options run in
   * one batch: the batch's lock and store deadlines are theirs (instances of one store share a runtime).
   */
  get options(): ResolvedOptions {
    return this.source.options;
  }

  get gone(): boolean {
    return this.source.gone;
  }

  /** Whether a listener called with `ack` belongs to this unit's emit (and may still join it). */
  sameEmit(ack: Ack): boolean {
    return ack === this.ack && !this.started;
  }

  /**
   * Another listener of the same event was called with the same ack (socket.io calls an event's
   * listeners one after the other with one ack): it runs in this unit, after the ones before it.
   */
  join(listener: Listener, wrapper: Listener, once: boolean): void {
    (this.also ??= []).push({ listener, wrapper, once });
  }

  /** Run the listener; its ack is held (the ack it asked for is sent after the save). */
  private call(main: boolean): unknown {
    // (`args` is this unit's own array, made by the wrapper, the client's ack at its end: the held ack
    // takes its place. Put in place, not popped and pushed: a pop to empty gives the array's store back.)
    if (this.ack) this.args[this.args.length - 1] = (...a: unknown[]) => this.hold(a);
    if (!this.also) return this.listener.apply(this.source.socket, this.args);
    return this.callAll(main);
  }

  /**
   * Several listeners, in order, as EventEmitter calls them (a throw stops the ones after it; one an
   * earlier one took off is not called); their promises are awaited together, and the first failure
   * is the unit's.
   */
  private callAll(main: boolean): unknown {
    const pending: PromiseLike<unknown>[] = [];
    let threw: { err: unknown } | undefined;
    for (let i = main ? -1 : 0; i < this.also!.length; i++) {
      const also = i < 0 ? undefined : this.also![i]!;
      if (also && !this.listening(also.wrapper, also.once)) continue;
      try {
        const result = (also ? also.listener : this.listener).apply(this.source.socket, this.args);
        if (isThenable(result)) pending.push(result);
      } catch (err) {
        threw = { err };
        break;
      }
    }
    if (pending.length === 0) {
      if (threw) throw threw.err;
      return undefined;
    }
    return Promise.allSettled(pending).then((outcomes) => {
      if (threw) throw threw.err;
      for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
    });
  }

  /**
   * Run the handler on `entry`'s tracked session (`first`: the first of its batch since the load).
   * True when it ran and its changes are to be saved; otherwise it was answered (its changes undone).
   * A handler that returned no promise is answered at once (no promise here either: no turn lost).
   */
  run(entry: SessionEntry, first: boolean): boolean | Promise<boolean> {
    this.started = true;
    // Gone, or its listener taken off (`off()`) by a handler that ran before it: plain socket.io,
    // which calls the listeners when the packet comes, would not call it now. No ack, as for an
    // event without listeners.
    const main = !this.gone && this.listening(this.wrapper, this.once);
    // None of its listeners is registered any more, or none was when it came (NOT_YET). Plain socket.io runs a
    // socket's handlers as its packets come, so a listener an earlier event's handler added (`socket.on('chat', ...)`
    // in a 'join' handler) gets the packets after it, and one it took off gets none: as here, where the earlier
    // handler ran just now. So the unit goes to the listeners registered at its turn (none: dropped, as in plain
    // socket.io). Only an emit with an ack (a NOT_YET unit always has one): it has one unit, whereas without an ack
    // every listener has its own, and two units of one packet would each call the new listener.
    if (!main && !this.gone && this.ack && !this.also?.some((also) => this.listening(also.wrapper, false))) {
      this.also = this.source.listenersNow(this.event);
    }
    if (!main && (this.gone || !this.also?.some((also) => this.listening(also.wrapper, false)))) {
      this.settle();
      return false;
    }
    // Its deadline (from its arrival) passed while the handlers before it in its batch ran.
    if (this.deadline <= Date.now()) {
      for (const also of this.also ?? []) if (also.once) this.listening(also.wrapper, true);
      this.fail(unavailable('queue-timeout'));
      return false;
    }
    entry.begin(first);
    let result: unknown;
    try {
      result = settledWithin(this.call(main), this.source.options.handlerTimeout);
    } catch (err) {
      return this.ended(entry, true, err);
    }
    // (settledWithin makes any thenable a native promise.)
    if (isThenable(result)) return (result as Promise<unknown>).then(() => this.ended(entry), (err: unknown) => this.ended(entry, true, err));
    return this.ended(entry);
  }

  /**
   * Whether `wrapper` is still registered for the event (counted without a copy of the list: Node
   * compares the registered functions themselves first); a `once` one is taken off, that one only.
   */
  private listening(wrapper: Listener, once: boolean): boolean {
    const { socket } = this.source;
    if (socket.listenerCount(this.event, wrapper) === 0) return false;
    if (once) socket.removeListener(this.event, wrapper);
    return true;
  }

  /** Ended before it ran: its `once` listeners are still taken off by their event, as in plain socket.io. */
  private takeOff(): void {
    if (this.started) return;
    this.started = true;
    if (this.once) this.listening(this.wrapper, true);
    for (const also of this.also ?? []) if (also.once) this.listening(also.wrapper, true);
  }

  /** The handler ended (`threw`: it threw or rejected with `err`): whether its changes are to be saved. */
  private ended(entry: SessionEntry, threw = false, err?: unknown): boolean {
    try {
      if (threw) {
        // Its changes are undone, so an ack it sent before throwing is not sent: the notice is.
        entry.rollback();
        this.failed(entry, err);
        return false;
      }
      const unstorable = entry.unstorable();
      if (!unstorable) return true;
      entry.rollback();
      this.refuse(unstorable);
      return false;
    } finally {
      this.touched = entry.end();
    }
  }

  /** The handler threw or timed out: reported, and its emit gets the notice. */
  private failed(entry: SessionEntry, err: unknown): void {
    const timedOut = err instanceof HandlerTimeoutError;
    if (timedOut) entry.abandon(err.pending);
    this.source.report(
      timedOut
        ? new SessionHandlerError('handler-timeout', err.message.replace(/^socket\.io-sessions: /, ''), { cause: err })
        : new SessionHandlerError('handler-error', `a per-message handler threw: ${describeThrown(err)}`, { cause: err }),
    );
    this.notice(timedOut ? 'handler-timeout' : 'handler-error');
  }

  private hold(args: unknown[]): void {
    if (this.acked) return;
    this.acked = args;
    // Acked after it returned, once its save is done: what it changed by then is stored.
    if (this.saved) this.answer(args);
  }

  /** Saved: send the ack (or, when the handler acks later, send it then). */
  succeed(): void {
    this.saved = true;
    if (this.acked) this.answer(this.acked);
    this.settle();
  }

  /** The store failed: the socket's status push, and the emit's notice. */
  fail(error: SessionUnavailableError): void {
    if (this.done) return; // answered already: no status push for it either
    // Its socket left before it ran (its waiting events are dropped): nobody to tell, nothing lost to report. (One
    // that ran and whose save failed is reported: its handler's changes are lost.)
    if (this.gone && !this.toSave) return this.settle();
    this.source.unavailable(error);
    this.notice(error.reason as NoticeReason, { retryAfter: error.data.retryAfter });
  }

  /** The emit gets no ack: it is answered by one notice instead (no-op when already answered). */
  notice(reason: NoticeReason, extra?: Pick<EmitNotice, 'retryAfter' | 'key'>): void {
    this.answer([emitNotice(reason, extra)]);
    this.settle();
  }

  private answer(args: unknown[]): void {
    if (this.answered || !this.ack || this.source.gone) return;
    this.answered = true;
    try {
      this.ack(...args);
    } catch (err) {
      // The handler acked with what socket.io cannot encode (a BigInt, a cycle), sent here after the
      // save, not in the handler: reported, and the client gets the notice (socket.io's ack sends once).
      this.source.report(new SessionHandlerError('handler-error', `a per-message handler acked with arguments socket.io cannot send: ${describeThrown(err)}`, { cause: err }));
      this.ack(emitNotice('handler-error'));
    }
  }

  /** The event failed alone on a value it stored: reported, and its ack (if it asked for one) is the notice instead. */
  refuse(error: SessionValueError): void {
    this.source.report(error);
    this.notice('not-storable', { key: error.key });
  }

  /** Finished without an answer of ours (the socket left, or a handler that did not ack). */
  settle(): void {
    if (this.done) return;
    this.done = true;
    this.takeOff();
    this.source.settled(this);
  }
}

/** A handler did not settle within `handlerTimeout` (reported through `serror`). */
class HandlerTimeoutError extends Error {
  constructor(
    ms: number,
    /** The handler's promise, still pending. */
    readonly pending: PromiseLike<unknown>,
  ) {
    super(`socket.io-sessions: a per-message handler did not settle within ${ms} ms (handlerTimeout); the session's queue moved on`);
    this.name = 'HandlerTimeoutError';
  }
}

/** What an app's function returned is a promise (or any thenable): its outcome comes later. */
export const isThenable = (value: unknown): value is PromiseLike<unknown> => !!value && typeof (value as PromiseLike<unknown>).then === 'function';

/** A handler that has not settled in time is given up on. */
function settledWithin(result: unknown, ms: number): unknown {
  if (!isThenable(result)) return result;
  const pending = result;
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    pending,
    new Promise((_, reject) => {
      // Unref'd: a handler pending forever does not hold the process once nothing else does (a server closed).
      timer = setTimeout(() => reject(new HandlerTimeoutError(ms, pending)), ms).unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The runtime a batch runs in (index.ts): it tells the session's sockets the session ended. */
export interface BatchOwner {
  invalidate(reason: InvalidReason, entry: SessionEntry): void;
}

/**
 * Run units of one entry as one batch: load, each handler in turn (a throwing one's changes are
 * undone, it gets no ack), save, then the acks; then `ended` (at once when nothing was pending). The
 * load and the save are in the same turn (and under the session lock, when there is one), so the
 * save trusts the load. Nothing but what is pending is waited for: the store, an async handler;
 * each step goes on from the callback of the one before (no promise of ours on this path).
 */
export function runBatch(runtime: BatchOwner, units: EventUnit[], ended: () => void): void {
  // Units of one session id normally share one entry; a retired entry's last units run on their own.
  const { entry } = units[0].source;
  for (const unit of units) if (unit.source.entry !== entry) return runGroups(runtime, byEntry(units), ended);
  new Batch(runtime, units, ended).load();
}

function runGroups(runtime: BatchOwner, groups: EventUnit[][], ended: () => void): void {
  const group = groups.shift();
  if (!group) return ended();
  new Batch(runtime, group, () => runGroups(runtime, groups, ended)).load();
}

/**
 * One batch's steps, each the callback of the one before. Each step entered from outside (the load,
 * the store's answers, an async handler settling) contains what our own code throws in it: the
 * batch's events not yet answered are answered "unavailable" and the batch ends, once. (The app's
 * throws are caught where its handler is called.) So a fault never escapes into the store's
 * callback or a promise nobody awaits, and a later batch started from this one's end (it drains on
 * in the same call) has its own faults contained in its own steps, never taken for this batch's.
 */
class Batch {
  private readonly entry: SessionEntry;
  private readonly timeoutMs: number;
  /** The next unit to run. */
  private next = 0;
  /** Whether a unit's handler ran and its changes are to be saved (then it is acked). */
  private ran = false;
  /** A handler returned a promise: the load and the save are not in one turn any more. */
  private awaited = false;
  /** `ended` was called: nothing of this batch runs again. */
  private over = false;
  /** Keys its save left out (see {@link report}). */
  private refused: SessionValueError[] | undefined = undefined;

  constructor(
    private readonly runtime: BatchOwner,
    private readonly units: EventUnit[],
    private readonly ended: () => void,
  ) {
    this.entry = units[0].source.entry;
    this.timeoutMs = units[0].options.storeTimeout;
  }

  load(): void {
    try {
      refresh(this.entry, this.timeoutMs, this.loaded);
    } catch (err) {
      this.broke(err);
    }
  }

  private readonly loaded: Outcome = (err, reason) => {
    if (this.over) return; // (a store answering after our fault ended the batch)
    try {
      if (err) failAll(this.units, err);
      else if (reason) sessionEnded(this.runtime, this.entry, this.units, reason);
      else return this.runHandlers();
      this.finish();
    } catch (fault) {
      this.broke(fault);
    }
  };

  /** The handlers in turn; an async one's promise goes on here when it settles. */
  private runHandlers(): void {
    const { units, entry } = this;
    while (this.next < units.length) {
      const unit = units[this.next++]!;
      const running = unit.run(entry, !this.ran);
      if (typeof running !== 'boolean') {
        this.awaited = true;
        running.then((toSave) => {
          if (toSave) this.ran = unit.toSave = true;
          try {
            this.runHandlers();
          } catch (fault) {
            this.broke(fault);
          }
        }, this.broke);
        return;
      }
      if (running) this.ran = unit.toSave = true;
    }
    // The save trusts the load (writes the whole copy, unless a write through this process came since) when both
    // are in one turn, under the session lock, or on a store no other process writes. Not after an await without
    // them: another node may have written the session meanwhile, so the changed keys are merged into a fresh read.
    const trusted = !this.awaited || units[0]!.options.lock !== undefined || entry.hub.local;
    save(entry, trusted, this.timeoutMs, this, this.saved);
  }

  /**
   * A key the save left out: its value could not be stored when serialised for the write, although
   * it passed its handler's check (a getter or `toJSON` that throws only on a later call). Reported;
   * the events whose handlers touched it get `not-storable` instead of their acks (invariant 2).
   */
  report(error: SessionValueError): void {
    this.units[0]!.source.report(error);
    (this.refused ??= []).push(error);
  }

  private readonly saved: Outcome = (err, reason) => {
    if (this.over) return;
    const { units, refused } = this;
    try {
      if (err) {
        // What its handlers changed is undone (not acked, so never to be saved later); what was
        // changed outside them (an acked per-connection write of the session) stays, to be saved.
        this.entry.discard(units.flatMap((unit) => (unit.toSave && unit.touched ? [...unit.touched] : [])));
        failAll(units, err, true);
      } else if (reason) sessionEnded(this.runtime, this.entry, units, reason, true);
      else {
        // A key the save left out is put back to what the store holds, as a refusal at the handler's end
        // is, when a handler of the batch touched it; another's (a per-connection socket's) stays in memory.
        for (const error of refused ?? []) if (units.some((unit) => unit.touched?.has(error.key))) this.entry.revert(error.key);
        for (const unit of units) {
          if (!unit.toSave) continue;
          const left = refused?.find((error) => unit.touched?.has(error.key));
          if (left) unit.notice('not-storable', { key: left.key });
          else unit.succeed();
        }
      }
    } catch (fault) {
      return this.broke(fault);
    }
    this.finish();
  };

  private finish(): void {
    if (this.over) return;
    this.over = true;
    this.ended();
  }

  /**
   * Our own code failed in a step: the copy is not trusted (it reloads), the batch's events not yet
   * answered are answered "unavailable" (a status push each), and the queue goes on. Once the batch
   * ended there is nothing of it to answer: the fault is not swallowed, it is thrown on.
   */
  private readonly broke = (err: unknown): void => {
    if (this.over) throw err;
    try {
      this.entry.discard();
      failAll(this.units, err);
    } finally {
      this.finish();
    }
  };
}

/**
 * The session ended before these events ran (or were saved): each is told (`ranOnly`: those whose
 * handlers ran; the others were answered), then the sockets are told and disconnected.
 */
function sessionEnded(runtime: BatchOwner, entry: SessionEntry, units: EventUnit[], reason: InvalidReason, ranOnly = false): void {
  for (const unit of units) if (!ranOnly || unit.toSave) unit.notice('session-ended');
  runtime.invalidate(reason, entry);
}

/** The load or the save failed: the events are answered "unavailable" (`ranOnly`: as above; values that cannot be stored were refused before). */
export function failAll(units: EventUnit[], err: unknown, ranOnly = false): void {
  const error = asUnavailable(err);
  for (const unit of units) if (!ranOnly || unit.toSave) unit.fail(error);
}

function byEntry(units: EventUnit[]): EventUnit[][] {
  const groups = new Map<SessionEntry, EventUnit[]>();
  for (const unit of units) {
    const group = groups.get(unit.source.entry);
    if (group) group.push(unit);
    else groups.set(unit.source.entry, [unit]);
  }
  return [...groups.values()];
}

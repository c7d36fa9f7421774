/**
 * The emit guard (invariants 7 and 10): an ack answered by the server's notice becomes a
 * `SessionEmitError` on that emit, and nothing emitted under one session reaches another. Public
 * socket.io-client API only: the instance's `emit` and `timeout` are wrapped (own properties over the
 * prototype's; `emitWithAck` calls `emit`), and `sendBuffer` is emptied; the disposer removes the wraps.
 */
import type { Socket } from 'socket.io-client';
import { noticeOf, SESSION_ENDED, type EmitNotice } from '../protocol.js';
import { SessionEmitError } from '../errors.js';

type Fn = (...args: any[]) => any;

export interface EmitGuard {
  /**
   * A handshake was refused "unavailable" (issue 15 case 9): drop what socket.io-client buffered and fail
   * every emit still waiting for its answer with `notice`, so none waits for the store to come back.
   * Emits made after this wait for the next attempt as usual.
   */
  fail(notice: EmitNotice): void;
  /**
   * The session ended: drop the emits socket.io-client buffered under it, fail every emit still
   * waiting for its answer with 'session-ended', and fail new ones at once until {@link resume}.
   */
  end(): void;
  /** A session is connected: emits go through again. */
  resume(): void;
}

/**
 * Wraps `socket`'s emits. `ackTimeout`: the socket has the `ackTimeout` option, so every ack is
 * called error-first, as after `timeout()`. Returns the guard; `undo` gets the wraps' removal.
 */
export function guardEmits(socket: Socket, ackTimeout: boolean, undo: Array<() => void>): EmitGuard {
  const { emit, timeout } = socket as unknown as Record<string, Fn>;
  // Each emit still waiting for its answer: fails it with a notice (once).
  const waiting = new Set<(notice: EmitNotice) => void>();
  let timed = false;
  let ended = false;
  const wraps: Record<string, Fn> = {
    // socket.io-client's timeout() returns the socket itself: the next emit is the timed one.
    timeout(ms: number) {
      timed = true;
      return timeout!.call(socket, ms);
    },
    emit(event: string, ...args: unknown[]) {
      const ack = args.at(-1) as Fn & { withError?: boolean };
      // Error-first: after timeout(), with the ackTimeout option, and emitWithAck's own callback (its `withError`).
      const errorFirst = timed || ackTimeout || !!ack?.withError;
      timed = false;
      if (typeof ack !== 'function') return ended ? socket : emit!.call(socket, event, ...args);
      const fail = (notice: EmitNotice) => waiting.delete(fail) && ack.call(socket, new SessionEmitError(notice, event));
      waiting.add(fail);
      // After end(): answered at once, never sent nor buffered for the next session.
      if (ended) return setTimeout(fail, 0, SESSION_ENDED), socket;
      const answer = (...answer: unknown[]) => {
        if (!waiting.delete(fail)) return; // already failed: an emit is answered once
        const notice = noticeOf(errorFirst ? answer.slice(1) : answer);
        if (notice) ack.call(socket, new SessionEmitError(notice, event));
        else ack.apply(socket, answer);
      };
      answer.withError = ack.withError;
      return emit!.call(socket, event, ...args.slice(0, -1), answer);
    },
  };
  Object.assign(socket, wraps);
  undo.push(() => Object.keys(wraps).forEach((name) => delete (socket as unknown as Record<string, Fn>)[name]));
  const fail = (notice: EmitNotice) => {
    socket.sendBuffer.length = 0;
    waiting.forEach((failOne) => failOne(notice));
  };
  return {
    fail,
    end() {
      ended = true;
      fail(SESSION_ENDED);
    },
    resume() {
      ended = false;
    },
  };
}

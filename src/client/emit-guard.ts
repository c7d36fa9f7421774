/**
 * The emit guard (invariants 7 and 10): an ack answered by the server's notice becomes a
 * `SessionEmitError` on that emit, and nothing emitted under one session reaches another. Public
 * socket.io-client API only: the instance's `emit` and `timeout` are wrapped (own properties over the
 * prototype's; `emitWithAck` calls `emit`), and `sendBuffer` is emptied; the disposer removes the wraps.
 */
import type { Socket } from 'socket.io-client';
import { noticeOf, SESSION_ENDED, type EmitNotice } from '../protocol.js';
import { SessionEmitError } from '../errors.js';
import { callApart } from './emitter.js';

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
  // The answer of each emit still waiting, in the order sent (answered in that order, as a rule: found
  // first). An array, not a Set: a Set emptied and filled again at every emit rehashes (an allocation)
  // every few emits, which cost a tenth of a client's CPU per acked emit. Also the first argument of an
  // answer that fails its emit with a notice (no server reply is this array). Failing them all takes
  // the whole list at once (a long list, such as emits buffered while offline, costs no search each).
  const waiting: Fn[] = [];
  let timed = false;
  let ended = false;
  const wraps: Record<string, Fn> = {
    // socket.io-client's timeout() returns the socket itself: the next emit is the timed one.
    timeout(ms: number) {
      timed = true;
      // After end() the next emit is answered at once and never reaches socket.io-client, which would
      // keep the flag for the first emit of the next session.
      return ended ? socket : timeout!.call(socket, ms);
    },
    emit(event: string, ...args: unknown[]) {
      const ack = args.at(-1) as Fn & { withError?: boolean };
      // Error-first: after timeout(), with the ackTimeout option, and emitWithAck's own callback (its `withError`).
      const errorFirst = timed || ackTimeout || ack?.withError;
      timed = false;
      if (typeof ack !== 'function') return ended ? socket : emit!.call(socket, event, ...args);
      // Called once: by socket.io-client while the emit is on the list (then taken off it), or with a notice
      // by fail(), which took the whole list first, or after end(). Marked error-first for socket.io-client
      // (`withError`) whatever the app asked: so socket.io-client calls it with (null, ...the server's reply),
      // or with an Error when it gives the emit up (timed out, or sent before the connection dropped).
      const answer = (err: unknown, ...reply: unknown[]) => {
        const failed = err === waiting;
        if (!failed) {
          const at = waiting.indexOf(answer);
          if (at < 0) return; // already answered: an emit is answered once
          waiting.splice(at, 1);
          // Given up by socket.io-client at a disconnect: a plain callback is then never called, as without the SDK.
          if (err && !errorFirst) return;
        }
        const notice = failed ? (reply[0] as EmitNotice) : noticeOf(reply);
        if (notice) ack.call(socket, new SessionEmitError(notice, event));
        else ack.apply(socket, errorFirst ? [err, ...reply] : reply);
      };
      answer.withError = true;
      // After end(): answered at once, never sent nor buffered for the next session. Else listed once
      // socket.io-client took it (it throws for a reserved event name).
      if (ended) setTimeout(answer, 0, waiting, SESSION_ENDED);
      else args.pop(), emit!.call(socket, event, ...args, answer), waiting.push(answer);
      return socket;
    },
  };
  Object.assign(socket, wraps);
  undo.push(() => {
    for (const name in wraps) delete (socket as unknown as Record<string, Fn>)[name];
  });
  const fail = (notice: EmitNotice) => {
    socket.sendBuffer.length = socket.receiveBuffer.length = 0;
    // Every one is answered, whatever an app callback throws (thrown again on a later task).
    waiting.splice(0).forEach((answer) => callApart(answer, waiting, notice));
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

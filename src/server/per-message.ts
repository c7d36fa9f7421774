/**
 * Per-message mode: every event handler runs as one unit of work on its session —
 * reload, handler (sync or async), save, then the ack — and the units of one session
 * run one at a time on this node, so concurrent events never lose an update.
 *
 * Handlers are wrapped as they are registered (`on`, `addListener`, `prependListener`, `once`,
 * `prependOnceListener`), so it works wherever the app registers them.
 */
import type { Socket } from 'socket.io';
import { CredentialEvents } from '../protocol.js';
import type { BoundSession } from './bound-session.js';
import type { ModeHost } from './mode-host.js';

/** Socket.IO's reserved events, the seed's `smessage` (dispatched by us, see below) and our own protocol events are not wrapped. */
const UNWRAPPED = new Set<string>(['connect', 'connect_error', 'disconnect', 'disconnecting', 'error', 'newListener', 'removeListener', 'smessage', CredentialEvents.REFRESH]);

type Listener = (...args: unknown[]) => unknown;
type Ack = (...args: unknown[]) => void;

/** Holds the handler's ack until the session is saved. */
function deferAck(ack: Ack | undefined) {
  let args: unknown[] | undefined;
  let released = false;
  return {
    /** What the handler receives in place of the real ack. */
    proxy: ack && ((...a: unknown[]) => (released ? ack(...a) : (args = a))),
    /** After the save: send the ack the handler asked for (or an empty one when `always`). */
    release(always: boolean) {
      released = true;
      if (ack && (args || always)) ack(...(args ?? []));
    },
  };
}

function runUnit(bound: BoundSession, host: ModeHost, args: unknown[], handler: (args: unknown[]) => unknown, autoAck: boolean): void {
  const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as Ack) : undefined;
  const deferred = deferAck(ack);
  void host.runExclusive(bound, async () => {
    const reason = await bound.reload();
    if (reason) return reason;
    try {
      await handler(deferred.proxy ? [...args, deferred.proxy] : args);
    } catch (err) {
      // A failed handler leaves the session as the store has it; the client gets no ack.
      bound.discardChanges();
      host.report(err, bound.socket);
      return undefined;
    }
    const lost = await bound.saveChanges();
    if (lost) return lost;
    deferred.release(autoAck);
    return undefined;
  });
}

/** Wrap the socket's handler registration so every handler runs as a unit of work. */
export function instrumentPerMessage(bound: BoundSession, host: ModeHost): void {
  const { socket } = bound;
  const methods = socket as unknown as Record<string, (this: Socket, event: string, listener: Listener) => Socket>;
  // The seed's per-message API: `socket.on('smessage', (message, session) => ...)` for `send()`
  // messages; the client's send callback fires after the save, as the seed's "(msg sent)" expects.
  // Registered before the wrapping below, so it is not wrapped twice.
  (socket.on as unknown as (event: string, listener: Listener) => void).call(socket, 'message', (...args: unknown[]) => {
    runUnit(bound, host, args, async (a) => {
      const ack = typeof a[a.length - 1] === 'function' ? a[a.length - 1] : undefined;
      const listeners = socket.listeners('smessage') as Listener[];
      await Promise.all(listeners.map((l) => l.call(socket, a[0], bound.session, ack)));
    }, true);
  });
  const wrap = (event: string, listener: Listener, once: boolean): Listener => {
    const wrapped = function (this: unknown, ...args: unknown[]) {
      if (once) socket.removeListener(event, wrapped);
      runUnit(bound, host, args, (a) => listener.apply(this, a), false);
    };
    // Lets removeListener(event, listener) find it.
    (wrapped as { listener?: Listener }).listener = listener;
    return wrapped;
  };
  // `once` is replaced too: Node's own would wrap our wrapper, and removeListener(fn) could not find it.
  const registrations = [
    ['on', 'on', false],
    ['addListener', 'on', false],
    ['prependListener', 'prependListener', false],
    ['once', 'on', true],
    ['prependOnceListener', 'prependListener', true],
  ] as const;
  const originals = { on: methods.on, prependListener: methods.prependListener };
  for (const [method, register, once] of registrations) {
    const fallback = methods[method];
    methods[method] = function (this: Socket, event: string, listener: Listener) {
      if (UNWRAPPED.has(event) || typeof listener !== 'function') return fallback.call(this, event, listener);
      return originals[register].call(this, event, wrap(event, listener, once));
    };
  }
}

/**
 * The seed's `smessage`, at the edge: a client's `send(message, cb)` arrives as a plain `message`
 * event, and one `message` listener of ours (added to a socket the first time one arrives while it
 * has `smessage` listeners) calls every `smessage` listener with the server's session, whatever the
 * client sent, then acks once they all settled. It is an ordinary listener, so it takes the ordinary
 * path: per-message mode runs it as a unit (reload, listeners, save, then the ack).
 */
import type { Socket } from 'socket.io';
import { describeThrown, SessionHandlerError, type SessionServerError } from '../errors.js';

type Listener = (...args: unknown[]) => unknown;

/** What the translation needs from the socket's binding. */
export interface SmessageHost {
  readonly socket: Socket;
  /** The server's session of the socket (read when the message runs). */
  readonly session: unknown;
  /** Per-message mode: a failure fails the event's unit; otherwise it is reported here. */
  readonly perMessage: boolean;
  report(error: SessionServerError): void;
}

const TRANSLATOR = Symbol('socket.io-sessions smessage');
type Translated = Socket & { [TRANSLATOR]?: Listener };

/** Before a `message` packet is dispatched: make sure the socket's smessage listeners will hear it. */
export function translateSmessage(host: SmessageHost): void {
  const socket = host.socket as Translated;
  if (socket.listenerCount('smessage') === 0) return;
  const translator = (socket[TRANSLATOR] ??= translatorOf(host));
  // (Checked each time: the app may have removed every `message` listener since.)
  if (socket.listeners('message').includes(translator)) return;
  socket.prependListener('message', translator);
}

function translatorOf(host: SmessageHost): Listener {
  const { socket } = host;
  return (message: unknown, ...rest: unknown[]) => {
    const listeners = socket.listeners('smessage') as Listener[];
    // The app removed its smessage listeners since: the message is its `message` listeners' alone (their ack too).
    if (listeners.length === 0) return undefined;
    const ack = typeof rest[rest.length - 1] === 'function' ? (rest[rest.length - 1] as Listener) : undefined;
    let acked: unknown[] | undefined;
    const held = ack && ((...args: unknown[]) => void (acked ??= args));
    const session = host.session;
    // (In an executor: a listener that throws synchronously rejects, as an async one would.)
    const all = new Promise((resolve) => resolve(Promise.all(listeners.map((listener) => listener.call(socket, message, session, held)))));
    const settled = all.then(() => void ack?.(...(acked ?? [])));
    if (host.perMessage) return settled;
    settled.catch((err: unknown) => host.report(new SessionHandlerError('handler-error', `an smessage listener threw: ${describeThrown(err)}`, { cause: err })));
    return undefined;
  };
}

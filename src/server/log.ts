/**
 * Debug logs, the way socket.io and express do it (the `debug` package): enable with
 * `DEBUG=socket.io-sessions:*` (or one of the names below). Session ids are never logged, only
 * their tag (a hash of the id); cookie values never, only cookie names.
 */
import createDebug from 'debug';

export const log = {
  /** Handshakes: which credential, which outcome, and why a refusal. */
  handshake: createDebug('socket.io-sessions:handshake'),
  /** Loads, saves, touches, merges. */
  save: createDebug('socket.io-sessions:save'),
  /** Destroys, sockets told their session is invalid, cross-node notices. */
  invalidate: createDebug('socket.io-sessions:invalidate'),
  /** Tickets minted, opened, refreshed; cookie renewal. */
  tickets: createDebug('socket.io-sessions:tickets'),
  /** The session lock and the per-session queue. */
  lock: createDebug('socket.io-sessions:lock'),
};

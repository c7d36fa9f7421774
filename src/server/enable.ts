/**
 * The seed's API, kept as a thin facade over {@link sessions}:
 * `enable({ socket: io, store, parser | cutter, per_message })`.
 */
import type { Namespace, Server } from 'socket.io';
import { SessionOptionsError } from '../errors.js';
import { sessions, type SessionServer } from './sessions.js';
import { KNOWN, rejectUnknownKeys, type SessionsOptions } from './options.js';

/** The options of enable(): those of sessions(), with the seed's names. */
const ENABLE_OPTIONS = [...KNOWN.filter((key) => key !== 'perMessage'), 'socket', 'per_message'];

export interface EnableOptions extends Omit<SessionsOptions, 'perMessage'> {
  /** The Socket.IO server (the seed's `io.listen(app)`). */
  socket: Server | Namespace;
  /** Seed name of `perMessage`. */
  per_message?: boolean;
}

/**
 * @example
 * ```js
 * const socket = enable({ socket: io, store, parser: cookieParser(secret) });
 * socket.on('sconnection', (client, session) => { ... });
 * socket.on('sinvalid', (client) => { ... });
 * ```
 */
export function enable(options: EnableOptions): SessionServer {
  if (!options || typeof options !== 'object') throw new SessionOptionsError('socket.io-sessions: enable({ socket, store, parser | cutter }) needs an options object');
  rejectUnknownKeys(options, ENABLE_OPTIONS, 'enable()');
  const { socket, per_message, ...rest } = options;
  return sessions(socket, { ...rest, perMessage: per_message ?? false });
}

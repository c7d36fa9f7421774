/**
 * Script-tag add-on: after `<script src="/socket.io/socket.io.js">`, attaches
 * `io.connectWithSession` to the global `io` (the seed's API) and exposes `ioSessions`.
 */
import { createConnectWithSession } from './connect.js';

const globalIo = (globalThis as { io?: Parameters<typeof createConnectWithSession>[0] & { connectWithSession?: unknown } }).io;
if (typeof globalIo !== 'function') {
  throw new Error('socket.io-sessions: the global "io" is missing; load <script src="/socket.io/socket.io.js"></script> before socket.io-sessions.js');
}

export const connectWithSession = createConnectWithSession(globalIo);
globalIo.connectWithSession = connectWithSession;
export { ErrorCode } from '../protocol.js';

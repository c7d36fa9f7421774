/**
 * Script-tag option check (dist/umd/socket.io-sessions-check.js): the third part of the served
 * `/socket.io/socket.io-sessions.js`, after the add-on and its tickets part, unless the server runs
 * with `NODE_ENV=production`. `io.connectWithSession(...)` then throws `SessionOptionsError` for a
 * misspelled option, naming the nearest one, before the tickets part adds its default credential.
 * Its own file so the add-on's 3 KB and the tickets part's budget stay as they are.
 */
import { checkConnectOptions } from './option-check.js';

type Connect = (url?: unknown, options?: any) => unknown;
const g = globalThis as unknown as { io: { connectWithSession: Connect }; ioSessions: { connectWithSession: Connect } };
const connect = g.io.connectWithSession;

g.io.connectWithSession = g.ioSessions.connectWithSession = (url, options) => (checkConnectOptions(url, options), connect(url, options));

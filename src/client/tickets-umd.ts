/**
 * Script-tag parts after the add-on (dist/umd/socket.io-sessions-tickets.js): tickets and shared
 * tabs. The server serves it right after the core add-on, in the same
 * `/socket.io/socket.io-sessions.js` response, followed by the embedded ticket:
 * `io.connectWithSession()` then uses `tickets()` by default (the embedded ticket while fresh,
 * renewed from a cache-busted copy of the served script), `ioSessions.tickets(options)` is there
 * for other sources, and `ioSessions.sharedTabs()` shares one connection among the tabs
 * (`io.connectWithSession({ tabs: ioSessions.sharedTabs() })`).
 */
import { tickets } from './tickets.js';
import { sharedTabs } from './tabs.js';
import type { ConnectWithSessionOptions } from './connect.js';

type Connect = (url?: string | ConnectWithSessionOptions, options?: ConnectWithSessionOptions) => unknown;
const g = globalThis as unknown as { io: { connectWithSession: Connect }; ioSessions: Record<string, unknown> };
const connect = g.io.connectWithSession;

g.io.connectWithSession = (url, options) => {
  if (typeof url === 'object') [url, options] = [undefined, url];
  return connect(url, options?.credential ? options : { ...options, credential: tickets() });
};
g.ioSessions.connectWithSession = g.io.connectWithSession;
g.ioSessions.tickets = tickets;
g.ioSessions.sharedTabs = sharedTabs;

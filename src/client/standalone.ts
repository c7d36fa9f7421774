/**
 * CDN builds (dist/cdn/): the client API, `tickets()` and `sharedTabs()` with socket.io-client inside, so one `<script>` (global
 * `ioSessions`) or one `import` from a URL is enough. socket.io-client's `io`, `Manager` and
 * `Socket` are exported too, for sockets that need no session.
 */
export * from './index.js';
export { tickets, type TicketOptions } from './tickets.js';
export { sharedTabs, type SharedTabsOptions } from './tabs.js';
export { io, Manager, Socket } from 'socket.io-client';

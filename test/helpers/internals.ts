/**
 * What a server holds per session and per connection, read from the library's internals (no public
 * API for it): the store hub's registry, carried reads, tombstones, write records and deadline
 * set, the session runtimes, the revalidation wheel, and socket.io's own clients and sockets. For tests that
 * everything is given back once nothing is connected.
 */
import type { Store } from 'express-session';
import type { Server } from 'socket.io';
import type { SessionServer } from '../../src/server/index.js';
import { StoreHub } from '../../src/server/store.js';
import { runtimeCount } from '../../src/server/runtime/index.js';
import type { ServerContext } from '../../src/server/context.js';

export type Sizes = Partial<ReturnType<StoreHub['sizes']>> & { runtimes: number; wheel: number; engineClients: number; sockets: number; timers: number };

export function serverSizes({ store, io, sio }: { store: Store; io: Server; sio: SessionServer }): Sizes {
  const hub = StoreHub.of(store);
  // `ctx` is private to SessionServer (TypeScript only): its revalidation wheel, read here and nowhere else.
  const { wheel } = (sio as unknown as { ctx: ServerContext }).ctx;
  return {
    ...hub?.sizes(),
    runtimes: hub ? runtimeCount(hub) : 0,
    wheel: wheel?.size ?? 0,
    engineClients: io.engine.clientsCount,
    sockets: io.of('/').sockets.size,
    // Timers of the whole process that keep it alive (unref'd ones are not listed): for a server in a process of its own.
    timers: process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length,
  };
}

/** The per-session and per-connection parts of `sizes` that must be 0 once nothing is connected and the work settled. */
export function leftovers(sizes: Sizes): Record<string, number> {
  const { live = 0, carried = 0, quietWaiters = 0, watched = 0, deadlines = 0, writes = 0, runtimes, wheel, engineClients, sockets } = sizes;
  const held = { live, carried, quietWaiters, watched, deadlines, writes, runtimes, wheel, engineClients, sockets };
  return Object.fromEntries(Object.entries(held).filter(([, n]) => n !== 0));
}

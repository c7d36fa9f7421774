/**
 * An in-process server node on src/ (startServer) sharing a real redis-server with its siblings:
 * sessions in connect-redis, cross-node events through @socket.io/redis-adapter, and its own Redis
 * clients (store, adapter pub and sub), as a separate machine would have. Optionally the library's
 * Redis lock, and `sio.httpLock()` in front of express-session so HTTP requests hold it too.
 *
 * @example
 *   const a = await startRedisNode(redis.url, { perMessage: true, redisLock: true, httpLock: true });
 *   t.after(() => a.close());
 *   await a.sub.unsubscribe('socket.io-request#/#');   // cut this node's pub/sub
 */
import type { Store } from 'express-session';
import { createClient } from 'redis';
import { RedisStore } from 'connect-redis';
import { createAdapter } from '@socket.io/redis-adapter';
import { redisLock, type RedisLockOptions, type SessionServer } from '../../src/server/index.js';
import { startServer, type TestServer, type TestServerOptions } from './servers.js';

export type RedisClient = ReturnType<typeof createClient>;

export interface RedisNodeOptions extends Partial<TestServerOptions> {
  /** The library's Redis lock on the store client (`redisLock(client, options)`) as the `lock` option. @default false */
  redisLock?: boolean | RedisLockOptions;
  /** Mount `sio.httpLock()` before express-session (needs `redisLock`). @default false */
  httpLock?: boolean;
  /** The session store on the node's store client. @default `new RedisStore({ client })` */
  createStore?(client: RedisClient): Store;
  /** The socket.io adapter on the node's pub and sub clients. @default `createAdapter(pub, sub)` of @socket.io/redis-adapter */
  createAdapter?(pub: RedisClient, sub: RedisClient): unknown;
}

export interface RedisNode {
  server: TestServer;
  /** The client of the store (and of the lock). */
  storeClient: RedisClient;
  /** The adapter's subscriber: unsubscribe it to cut this node off the others. */
  sub: RedisClient;
  /** Closes the server, then quits the node's Redis clients. */
  close(): Promise<void>;
}

export async function startRedisNode(redisUrl: string, options: RedisNodeOptions = {}): Promise<RedisNode> {
  const { redisLock: lockOptions = false, httpLock = false, createStore = (client) => new RedisStore({ client }), createAdapter: adapterOf = createAdapter, ...serverOptions } = options;
  const clients: RedisClient[] = [];
  const quit = () => Promise.allSettled(clients.map((c) => (c.isOpen ? c.quit() : undefined)));
  const connect = async () => {
    const client = createClient({ url: redisUrl });
    client.on('error', () => {}); // reconnects by itself; the tests see failures through the library
    clients.push(client);
    await client.connect();
    return client;
  };
  try {
    const [storeClient, pub, sub] = [await connect(), await connect(), await connect()];
    const holder: { sio?: SessionServer } = {};
    const server = await startServer({
      store: createStore(storeClient),
      ...(lockOptions ? { lock: redisLock(storeClient, lockOptions === true ? {} : lockOptions) } : {}),
      ...serverOptions,
      before: (io) => {
        io.adapter(adapterOf(pub, sub) as ReturnType<typeof createAdapter>);
        serverOptions.before?.(io);
      },
      routes: (app) => {
        // Before express-session: the request holds the session's lock until its response is finished.
        if (httpLock) app.use((req, res, next) => holder.sio!.httpLock()(req, res, next));
        serverOptions.routes?.(app);
      },
    });
    holder.sio = server.sio;
    return {
      server,
      storeClient,
      sub,
      async close() {
        await server.close();
        await quit();
      },
    };
  } catch (err) {
    await quit();
    throw err;
  }
}

/**
 * The servers `npm run bench` measures, in their own process (as in production: the client's and
 * the server's work do not share one event loop): plain socket.io, and express + express-session
 * + socket.io + socket.io-sessions with the token endpoint: on MemoryStore, and in per-message
 * mode on a real redis-server (connect-redis) without and with the cross-node lock. Each has an
 * acked `inc` event that increments a session (or, plain, a process) counter. Prints one JSON line
 * with the URLs and the session cookie of each, then serves until killed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { startServer, type TestServer } from '../test/helpers/servers.js';
import { startRedis } from '../test/helpers/redis.js';
import { redisLock } from '../src/server/index.js';

const plainHttp = createServer();
let plainCounter = 0;
new Server(plainHttp).on('connection', (s) => s.on('inc', (ack: (n: number) => void) => ack(++plainCounter)));
await new Promise<void>((r) => plainHttp.listen(0, '127.0.0.1', r));

const withInc = (server: TestServer) => {
  servers.push(server);
  server.sio.on('sconnection', (s) =>
    s.on('inc', (ack: (n: number) => void) => {
      s.session.counter = (s.session.counter ?? 0) + 1;
      ack(s.session.counter);
    }),
  );
  return server;
};

const redis = await startRedis();
const client = await createClient({ url: redis.url }).on('error', () => undefined).connect();
const servers: TestServer[] = [];
process.once('SIGTERM', async () => {
  setTimeout(() => process.exit(0), 3000).unref(); // never outlive the bench over a lingering connection
  await Promise.all(servers.map((server) => server.close()));
  await client.quit().catch(() => undefined);
  await redis.dispose();
  process.exit(0);
});
const routes = { routes: (app: import('express').Express) => app.get('/rtt', (_req, res) => void res.end('ok')) };
const memory = withInc(await startServer({ ...routes }));
const memoryPerMessage = withInc(await startServer({ perMessage: true }));
const redisNoLock = withInc(await startServer({ perMessage: true, store: new RedisStore({ client }) }));
const redisLocked = withInc(await startServer({ perMessage: true, store: new RedisStore({ client, prefix: 'locked:' }), lock: redisLock(client) }));

const endpoint = async (server: TestServer) => ({ url: server.url, cookie: await server.login({ counter: 0 }) });
console.log(
  JSON.stringify({
    plainUrl: `http://127.0.0.1:${(plainHttp.address() as AddressInfo).port}`,
    memory: await endpoint(memory),
    memoryPerMessage: await endpoint(memoryPerMessage),
    redisNoLock: await endpoint(redisNoLock),
    redisLocked: await endpoint(redisLocked),
  }),
);

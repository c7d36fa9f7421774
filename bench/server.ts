/**
 * The servers `npm run bench` measures, in their own process (as in production: the client's and
 * the server's work do not share one event loop): plain socket.io, and express + express-session
 * (MemoryStore) + socket.io + socket.io-sessions with the token endpoint. Prints one JSON line
 * `{ plainUrl, url, cookie }`, then serves until killed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { startServer } from '../test/helpers/servers.js';

const plainHttp = createServer();
new Server(plainHttp);
await new Promise<void>((r) => plainHttp.listen(0, '127.0.0.1', r));
const server = await startServer({
  routes(app) {
    app.get('/rtt', (_req, res) => void res.end('ok'));
  },
});
const cookie = await server.login({ user: 'bench' });
console.log(JSON.stringify({ plainUrl: `http://127.0.0.1:${(plainHttp.address() as AddressInfo).port}`, url: server.url, cookie }));

// Temporary probe (not committed): heap per socket by constructor, ours vs plain.
import { createServer } from 'node:http';
import { fork } from 'node:child_process';
import v8 from 'node:v8';
import express from 'express';
import session from 'express-session';
import { Server } from 'socket.io';
import { sessions } from '../src/server/index.js';
import { sign } from 'cookie-signature';

const N = Number(process.env.N ?? 1000);
const mode = process.argv[2] ?? 'ours';
if (process.argv[2] === 'client') {
  const { io } = await import('socket.io-client');
  const [url, cookiesJson] = [process.argv[3], process.argv[4]];
  const cookies: string[] = JSON.parse(cookiesJson);
  let n = 0;
  for (const cookie of cookies) {
    const s = io(url, { transports: ['websocket'], forceNew: true, extraHeaders: { cookie } });
    s.on('connect', () => { if (++n === cookies.length) process.send!('up'); });
    s.on('connect_error', (e) => console.error('err', e.message));
  }
} else {
  const store = new session.MemoryStore();
  const app = express();
  const http = createServer(app);
  const io = new Server(http);
  if (mode !== 'plain') sessions(io, { store, secret: 's', perMessage: mode === 'pm' });
  io.on('connection', (s) => s.on('inc', (ack: () => void) => ack()));
  const cookies: string[] = [];
  for (let i = 0; i < N; i++) {
    const sid = `sid${i}`;
    await new Promise<void>((r) => store.set(sid, { cookie: { originalMaxAge: null, httpOnly: true, path: '/' }, user: `u${i}`, counter: 0 } as never, () => r()));
    cookies.push(`connect.sid=s:${sign(sid, 's')}`);
  }
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(http.address() as any).port}`;
  global.gc!(); global.gc!();
  const before = process.memoryUsage().heapUsed;
  v8.writeHeapSnapshot(`/tmp/heap/${mode}-before.heapsnapshot`);
  const child = fork(new URL(import.meta.url).pathname, ['client', url, JSON.stringify(cookies)], { execArgv: ['--import', 'tsx'] });
  await new Promise((r) => child.once('message', r));
  await new Promise((r) => setTimeout(r, 500));
  global.gc!(); global.gc!();
  const after = process.memoryUsage().heapUsed;
  v8.writeHeapSnapshot(`/tmp/heap/${mode}-after.heapsnapshot`);
  console.log(mode, 'per socket', Math.round((after - before) / N), 'B');
  child.kill();
  process.exit(0);
}

// A page on one origin, its Socket.IO server on another site, where the page's session cookie does
// not go: the page fetches a short-lived sealed ticket from its own origin and connects with it.
// Run: node examples/tickets/server.mjs   (PORT for the page, default 3000; SOCKET_PORT, default 3001)
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import express from 'express';
import session from 'express-session';
import { Server } from 'socket.io';
import { sessions } from 'socket.io-sessions/server';

const store = new session.MemoryStore();
const secret = process.env.SESSION_SECRET ?? 'change this secret';
const port = Number(process.env.PORT ?? 3000);
const socketPort = Number(process.env.SOCKET_PORT ?? 3001);
const pageOrigin = `http://localhost:${port}`;
const socketUrl = `http://127.0.0.1:${socketPort}`; // another site: localhost's cookie never goes there

// The Socket.IO server, on its own origin. CORS for the page's polling requests.
const socketServer = createServer();
const io = new Server(socketServer, { cors: { origin: pageOrigin, credentials: true } });
const sio = sessions(io, { store, secret, origins: [pageOrigin] });
sio.on('sconnection', (socket) => {
  socket.on('whoami', (ack) => ack(socket.session.user));
  socket.on('visit', (ack) => {
    socket.session.visits = (socket.session.visits ?? 0) + 1;
    ack(socket.session.visits);
  });
});

// The page's own origin: the page, the login, and the token endpoint (before express-session).
const app = express();
app.use(sio.tokenHandler()); // GET /socket.io-sessions/token
app.use(session({ store, secret, resave: false, saveUninitialized: false }));
const page = readFileSync(new URL('public/index.html', import.meta.url), 'utf8').replaceAll('%SOCKET_URL%', socketUrl);
app.get('/', (req, res) => res.type('html').send(page));
app.post('/login', express.json(), (req, res, next) => {
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = String(req.body.name).slice(0, 40);
    req.session.save((err) => (err ? next(err) : res.json({ user: req.session.user })));
  });
});
app.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));

socketServer.listen(socketPort, '127.0.0.1', () => console.log(`Socket.IO on ${socketUrl}`));
app.listen(port, 'localhost', () => console.log(`page on ${pageOrigin}`));

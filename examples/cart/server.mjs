// A cart written from both HTTP routes and socket handlers, without losing an item: per-message
// mode (each socket event reloads the session, and saves before its ack) and httpLock() (a request
// and the session's socket events take turns).
// Run: node examples/cart/server.mjs   (PORT, default 3000)
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import { Server } from 'socket.io';
import { sessions } from 'socket.io-sessions/server';

const store = new session.MemoryStore();
const secret = process.env.SESSION_SECRET ?? 'change this secret';

const app = express();
const httpServer = createServer(app);
const io = new Server(httpServer);
const sio = sessions(io, { store, secret, perMessage: true });
app.use(sio.httpLock()); // before express-session
app.use(session({ store, secret, resave: false, saveUninitialized: true }));
// After the session: loading the page gives the visitor a session (and its cookie) to connect with.
app.use(express.static(new URL('public', import.meta.url).pathname));

const add = (s, item) => (s.cart = [...(s.cart ?? []), String(item).slice(0, 40)]).length;

app.post('/cart', express.json(), (req, res) => res.json({ size: add(req.session, req.body.item) }));
app.get('/cart', (req, res) => res.json(req.session.cart ?? []));
app.delete('/cart', (req, res) => {
  req.session.cart = [];
  res.json({ size: 0 });
});

sio.on('sconnection', (socket) => {
  socket.on('add', (item, ack) => ack(add(socket.session, item))); // the ack is sent after the save
});

const port = Number(process.env.PORT ?? 3000);
httpServer.listen(port, 'localhost', () => console.log(`cart on http://localhost:${port}`));

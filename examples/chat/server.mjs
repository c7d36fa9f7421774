// A chat whose messages carry the logged-in user: the name comes from the session, never from the
// client (per-connection mode, the default: nothing here writes the session from a socket).
// Run: node examples/chat/server.mjs   (PORT, default 3000)
import { createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import { Server } from 'socket.io';
import { sessions } from 'socket.io-sessions/server';

const store = new session.MemoryStore();
const secret = process.env.SESSION_SECRET ?? 'change this secret';

const app = express();
app.use(express.static(new URL('public', import.meta.url).pathname));
app.use(session({ store, secret, resave: false, saveUninitialized: false }));
app.post('/login', express.json(), (req, res, next) => {
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = String(req.body.name).slice(0, 40);
    req.session.save((err) => (err ? next(err) : res.json({ user: req.session.user })));
  });
});
app.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));

const httpServer = createServer(app);
const io = new Server(httpServer);
const sio = sessions(io, { store, secret });

sio.on('sconnection', (socket) => {
  socket.on('say', (text) => {
    // Whatever the client sends, the author is the session's user.
    if (typeof text === 'string' && text.length > 0) io.emit('said', { user: socket.session.user, text: text.slice(0, 500) });
  });
});

const port = Number(process.env.PORT ?? 3000);
httpServer.listen(port, 'localhost', () => console.log(`chat on http://localhost:${port}`));

/**
 * Type tests against the published declarations (dist/*.d.ts and .d.cts, reached through the
 * package's own `exports`, as a consumer's compiler reaches them): the event maps given to
 * `connectWithSession<ServerToClient, ClientToServer>()` flow into `on`/`emit`, those of
 * `new Server<ClientToServer, ServerToClient>()` into the sockets `sessions(io)` hands to
 * `sconnection` (inferred from the Server), and wrong event names or payloads do not compile.
 * `socket.session` is typed as present (undefined on a namespace without `sessions()`: docs/server.md
 * says so); `sio.sessionOf(socket)` is the typed way to ask. Each case is a small consumer file
 * compiled in memory with TypeScript (strict, NodeNext); `expect-type` checks the inferred types.
 * Needs `npm run build` first, as `npm test` does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The app's event maps, as an app declares them. */
const EVENT_MAPS = `
interface ServerToClient {
  welcome: (user: string) => void;
  score: (points: number, by: string) => void;
}
interface ClientToServer {
  whoami: (payload: string, ack: (reply: { user: string }) => void) => void;
  move: (x: number, y: number) => void;
}
`;

const VALID_ESM = `
import { expectTypeOf } from 'expect-type';
import { connectWithSession, type SessionSocket, type SessionController } from 'socket.io-sessions';
import { sessions, type SessionServer } from 'socket.io-sessions/server';
import { sharedTabs, type SharedSocket } from 'socket.io-sessions/tabs';
${EVENT_MAPS}
const socket = connectWithSession<ServerToClient, ClientToServer>('http://localhost:3000', { onInvalid: 'none' });
expectTypeOf(socket).toMatchTypeOf<SessionSocket<ServerToClient, ClientToServer>>();
expectTypeOf(socket.sessions).toEqualTypeOf<SessionController>();
socket.on('welcome', (user) => expectTypeOf(user).toEqualTypeOf<string>());
socket.on('score', (points, by) => {
  expectTypeOf(points).toEqualTypeOf<number>();
  expectTypeOf(by).toEqualTypeOf<string>();
});
socket.sessions.on('state', ({ newState }) => expectTypeOf(newState).toEqualTypeOf<'connecting' | 'connected' | 'disconnected' | 'invalid'>());
socket.emit('move', 1, 2);
socket.emit('whoami', 'ping', (reply) => expectTypeOf(reply).toEqualTypeOf<{ user: string }>());
expectTypeOf(sessions).returns.toEqualTypeOf<SessionServer>();
// Shared tabs: the same event maps, on the surface a tab shares.
const shared = connectWithSession<ServerToClient, ClientToServer>({ tabs: sharedTabs(), onInvalid: 'none' });
expectTypeOf(shared).toEqualTypeOf<SharedSocket<ServerToClient, ClientToServer>>();
expectTypeOf(connectWithSession('http://localhost:3000', { tabs: sharedTabs({ name: 'chat' }) }).leader).toEqualTypeOf<boolean>();
shared.on('score', (points, by) => {
  expectTypeOf(points).toEqualTypeOf<number>();
  expectTypeOf(by).toEqualTypeOf<string>();
});
shared.emit('whoami', 'ping', (reply) => expectTypeOf(reply).toEqualTypeOf<{ user: string }>());
expectTypeOf(shared.emitWithAck('whoami', 'ping')).resolves.toEqualTypeOf<{ user: string }>();
shared.timeout(1000).emit('whoami', 'ping', (err, reply) => expectTypeOf(reply).toEqualTypeOf<{ user: string }>());
expectTypeOf(shared.sessions).toEqualTypeOf<SessionController>();
// Server: sessions(io) takes the event maps of the Server it is given.
import { Server, type Socket } from 'socket.io';
import type { Store } from 'express-session';
import { SessionHandlerError, SessionValueError, type SocketSession, type SessionServerError } from 'socket.io-sessions/server';
declare const store: Store;
interface SocketData { joinedAt: number }
const io = new Server<ClientToServer, ServerToClient, {}, SocketData>();
const sio = sessions(io, { store, secret: 's' });
expectTypeOf(sio).toEqualTypeOf<SessionServer<ClientToServer, ServerToClient, {}, SocketData>>();
sio.on('sconnection', (socket, session) => {
  expectTypeOf(socket).toEqualTypeOf<Socket<ClientToServer, ServerToClient, {}, SocketData>>();
  expectTypeOf(session).toEqualTypeOf<SocketSession>();
  expectTypeOf(socket.session).toEqualTypeOf<SocketSession>();
  expectTypeOf(sio.sessionOf(socket)).toEqualTypeOf<SocketSession | undefined>();
  expectTypeOf(socket.data.joinedAt).toEqualTypeOf<number>();
  socket.on('move', (x, y) => {
    expectTypeOf(x).toEqualTypeOf<number>();
    expectTypeOf(y).toEqualTypeOf<number>();
  });
  socket.on('whoami', (payload, ack) => ack({ user: payload }));
  socket.emit('score', 3, 'ann');
});
sio.on('sinvalid', (socket, reason) => {
  expectTypeOf(socket).toEqualTypeOf<Socket<ClientToServer, ServerToClient, {}, SocketData>>();
  expectTypeOf(reason).toMatchTypeOf<string>();
});
sio.on('serror', (error) => {
  expectTypeOf(error).toEqualTypeOf<SessionServerError>();
  if (error instanceof SessionHandlerError) expectTypeOf(error.reason).toEqualTypeOf<'handler-error' | 'handler-timeout'>();
  if (error instanceof SessionValueError) expectTypeOf(error.key).toEqualTypeOf<string>();
});
// A namespace's own maps, too.
const chat = sessions(io.of('/chat'), { store, secret: 's' });
chat.on('sconnection', (socket) => socket.emit('welcome', 'ann'));
`;

/** The same from a CommonJS file: the `require` branch and its .d.cts files. */
const VALID_CJS = `
import { expectTypeOf } from 'expect-type';
import { connectWithSession } from 'socket.io-sessions';
import { sessions, type SessionServer } from 'socket.io-sessions/server';
import { sharedTabs } from 'socket.io-sessions/tabs';
${EVENT_MAPS}
const socket = connectWithSession<ServerToClient, ClientToServer>();
socket.on('score', (points) => expectTypeOf(points).toEqualTypeOf<number>());
connectWithSession<ServerToClient, ClientToServer>({ tabs: sharedTabs() }).emit('move', 1, 2);
socket.emit('move', 1, 2);
expectTypeOf(sessions).returns.toEqualTypeOf<SessionServer>();
`;

/** Each must fail to compile. */
const INVALID: Record<string, string> = {
  'a payload of the wrong type': `socket.emit('move', '1', 2);`,
  'too few arguments': `socket.emit('move', 1);`,
  'a listener of the wrong shape': `socket.on('welcome', (user: number) => {});`,
  'an ack of the wrong shape': `socket.emit('whoami', 'ping', (reply: { user: number }) => {});`,
  'an event name the server does not send': `socket.on('welcom', () => {});`,
  'an event name the server does not handle': `socket.emit('mvoe', 1, 2);`,
  'shared tabs: an event name the server does not handle': `shared.emit('mvoe', 1, 2);`,
  'shared tabs: a listener of the wrong shape': `shared.on('welcome', (user: number) => {});`,
  "shared tabs: a socket member tabs do not share (the Manager)": `shared.io.reconnection(false);`,
  'shared tabs: an option sharedTabs does not take': `sharedTabs({ nmae: 'chat' });`,
  'server: an event name the server does not send': `sio.on('sconnection', (socket) => socket.emit('welcom', 'ann'));`,
  'server: a payload of the wrong type': `sio.on('sconnection', (socket) => socket.emit('welcome', 42));`,
  'server: an event name clients do not send': `sio.on('sconnection', (socket) => socket.on('mvoe', () => {}));`,
  'server: a listener of the wrong shape': `sio.on('sconnection', (socket) => socket.on('move', (x: string) => {}));`,
  'server: an ack of the wrong shape': `sio.on('sconnection', (socket) => socket.on('whoami', (payload, ack) => ack({ user: 42 })));`,
  'server: a misspelled option of sessions()': `sessions(io, { store, secret: 's', storeTimout: 100 });`,
  "server: a misspelled event of sessions()' emitter": `sio.on('sconection', () => {});`,
  "server: a listener of the wrong shape for the emitter's events": `sio.on('sinvalid', (socket, reason: number) => {});`,
  'server: assigning socket.session': `sio.on('sconnection', (socket, session) => { socket.session = session; });`,
};
const invalidSource = (line: string) => `import { connectWithSession } from 'socket.io-sessions';
import { sharedTabs } from 'socket.io-sessions/tabs';
import { sessions } from 'socket.io-sessions/server';
import { Server } from 'socket.io';
import type { Store } from 'express-session';
${EVENT_MAPS}
const socket = connectWithSession<ServerToClient, ClientToServer>();
const shared = connectWithSession<ServerToClient, ClientToServer>({ tabs: sharedTabs() });
declare const store: Store;
const io = new Server<ClientToServer, ServerToClient>();
const sio = sessions(io, { store, secret: 's' });
${line}
`;
/** The line of `invalidSource` that holds the case. */
const INVALID_LINE = invalidSource('').split('\n').length - 1;

/** Compiles the given consumer files (paths relative to the package root) together and returns each one's diagnostics as `line: message`. */
function compile(files: Record<string, string>): Record<string, string[]> {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
    skipLibCheck: false,
  };
  const virtual = new Map(Object.entries(files).map(([name, text]) => [join(ROOT, name), text]));
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name);
  host.getSourceFile = (name, language, ...rest) => {
    const text = virtual.get(name);
    return text === undefined ? getSourceFile.call(host, name, language, ...rest) : ts.createSourceFile(name, text, language);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  const format = (d: ts.Diagnostic) => {
    const line = d.file && d.start !== undefined ? `${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : '';
    return `${line}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  };
  const result: Record<string, string[]> = {};
  for (const [name, path] of Object.keys(files).map((n) => [n, join(ROOT, n)] as const)) {
    const source = program.getSourceFile(path)!;
    result[name] = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map(format);
  }
  // The published declarations themselves must be clean too (skipLibCheck is off).
  result['dist'] = program
    .getSourceFiles()
    .filter((f) => f.fileName.startsWith(join(ROOT, 'dist')))
    .flatMap((f) => program.getSemanticDiagnostics(f).map((d) => `${f.fileName}: ${format(d)}`));
  return result;
}

const invalidFiles = Object.fromEntries(Object.values(INVALID).map((line, i) => [`.typetest-invalid-${i}.ts`, invalidSource(line)]));
const results = compile({ '.typetest-valid.ts': VALID_ESM, '.typetest-valid.cts': VALID_CJS, ...invalidFiles });

test('event maps flow through connectWithSession<ServerToClient, ClientToServer>() (import and require declarations)', () => {
  assert.deepEqual(results['.typetest-valid.ts'], [], 'ESM consumer');
  assert.deepEqual(results['.typetest-valid.cts'], [], 'CommonJS consumer');
  assert.deepEqual(results['dist'], [], 'the declarations in dist/');
});

for (const [i, [what, line]] of Object.entries(INVALID).entries()) {
  test(`does not compile: ${what} (${line})`, () => {
    const errors = results[`.typetest-invalid-${i}.ts`]!;
    assert.ok(errors.length > 0, `expected a type error for: ${line}`);
    for (const error of errors) assert.ok(error.startsWith(`${INVALID_LINE}: `), `an error elsewhere than the case's line ${INVALID_LINE}: ${error}`);
  });
}

/**
 * A misspelled option throws `SessionOptionsError` at once, naming the nearest option, on the
 * server (`sessions()`, `enable()`) and the client (`connectWithSession()` with socket.io-client's
 * own options, `retry`, `on`, `tickets()`, `sharedTabs()`). The client's list of socket.io-client
 * options is compared with socket.io-client's own types, so an upgrade that adds one cannot make
 * the check refuse it. (The script-tag build's check runs in Chromium: test/packaging/snippets.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryStore } from 'express-session';
import { Server } from 'socket.io';
import ts from 'typescript';
import { enable, sessions } from '../../src/server/index.js';
import { connectWithSession, SessionOptionsError } from '../../src/client/index.js';
import { tickets } from '../../src/client/tickets.js';
import { sharedTabs } from '../../src/client/tabs.js';
import { SOCKET_IO_CLIENT_OPTIONS } from '../../src/client/option-check.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const URL_NOWHERE = 'http://127.0.0.1:9';

/** Asserts `make()` throws SessionOptionsError with exactly `message`. */
function throwsOptionsError(make: () => unknown, message: string): void {
  assert.throws(make, (err: unknown) => {
    assert.ok(err instanceof SessionOptionsError, `not a SessionOptionsError: ${String(err)}`);
    assert.equal(err.message, message);
    return true;
  });
}

test('server: a misspelled option of sessions() throws, naming the nearest option', (t) => {
  const io = new Server(createServer());
  t.after(() => io.close());
  const base = { store: new MemoryStore(), secret: 'keyboard cat' };
  throwsOptionsError(() => sessions(io, { ...base, storeTimout: 100 } as never), 'socket.io-sessions: sessions() has no option "storeTimout" (did you mean "storeTimeout"?)');
  throwsOptionsError(() => sessions(io, { ...base, perMesage: true } as never), 'socket.io-sessions: sessions() has no option "perMesage" (did you mean "perMessage"?)');
  throwsOptionsError(() => sessions(io, { ...base, nonsense: 1 } as never), 'socket.io-sessions: sessions() has no option "nonsense"');
  // The seed facade's own names are options of enable().
  throwsOptionsError(() => enable({ socket: io, ...base, per_mesage: true } as never), 'socket.io-sessions: enable() has no option "per_mesage" (did you mean "per_message"?)');
});

test('client: a misspelled option of connectWithSession() throws before anything connects, naming the nearest option', () => {
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { maxReload: 3 } as never), 'socket.io-sessions: connectWithSession() has no option "maxReload" (did you mean "maxReloads"?)');
  // socket.io-client's own options are options too, misspelled ones are not.
  throwsOptionsError(() => connectWithSession({ reconectionDelay: 50 } as never), 'socket.io-sessions: connectWithSession() has no option "reconectionDelay" (did you mean "reconnectionDelay"?)');
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { autoconnect: false } as never), 'socket.io-sessions: connectWithSession() has no option "autoconnect" (did you mean "autoConnect"?)');
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { retry: 1000 } as never), 'socket.io-sessions: "retry" of connectWithSession() must be an object ({ min, max }), got 1000');
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { retry: { mni: 10 } } as never), 'socket.io-sessions: "retry" of connectWithSession() has no option "mni" (did you mean "min"?)');
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { on: { stat: () => {} } } as never), 'socket.io-sessions: "on" of connectWithSession() has no option "stat" (did you mean "state"?)');
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { on: { state: 'log' } } as never), 'socket.io-sessions: invalid on.state: log');
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { on: { invalid: {} } } as never), 'socket.io-sessions: invalid on.invalid: [object Object]');
});

test('client: misspelled options of tickets() and sharedTabs() throw when they are given to connectWithSession()', () => {
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { credential: tickets({ tokenURL: '/token' } as never) }), 'socket.io-sessions: tickets() has no option "tokenURL" (did you mean "tokenUrl"?)');
  throwsOptionsError(() => connectWithSession(URL_NOWHERE, { credential: tickets({ retry: 5 } as never) }), 'socket.io-sessions: "retry" of tickets() must be an object ({ min, max }), got 5');
  throwsOptionsError(() => connectWithSession({ tabs: sharedTabs({ nmae: 'chat' } as never) }), 'socket.io-sessions: sharedTabs() has no option "nmae" (did you mean "name"?)');
});

test("client: every socket.io-client option and every option of the SDK is accepted (the list matches socket.io-client's types)", () => {
  // socket.io-client's ManagerOptions & SocketOptions, read from its declarations.
  const file = join(ROOT, '.option-typos-probe.ts');
  const source = `import type { ManagerOptions, SocketOptions } from 'socket.io-client';\nexport declare const options: ManagerOptions & SocketOptions;\n`;
  const compilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true };
  const host = ts.createCompilerHost(compilerOptions);
  const { getSourceFile, fileExists } = host;
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile.call(host, name, language, ...rest));
  const program = ts.createProgram([file], compilerOptions, host);
  const checker = program.getTypeChecker();
  const symbol = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)!)!)[0]!;
  const fromTypes = checker.getTypeOfSymbol(symbol).getProperties().map((p) => p.name);
  assert.ok(fromTypes.length > 30, `read ${fromTypes.length} options from socket.io-client's types`);
  assert.deepEqual([...SOCKET_IO_CLIENT_OPTIONS].sort(), [...fromTypes].sort());

  const every = Object.fromEntries(SOCKET_IO_CLIENT_OPTIONS.map((key) => [key, undefined]));
  const socket = connectWithSession(URL_NOWHERE, {
    ...every,
    autoConnect: false,
    onInvalid: 'none',
    maxReloads: 1,
    reloadWindow: 1000,
    retry: { min: 10, max: 20 },
    on: { state() {}, invalid() {}, unavailable() {}, fatal() {} },
    credential: tickets({ source: 'cookie', tokenUrl: '/t', scriptUrl: '/s', retry: { min: 1, max: 2 } }),
  });
  assert.equal(socket.sessions.state, 'disconnected');
  socket.sessions.dispose();
  socket.disconnect();
  const shared = connectWithSession({ tabs: sharedTabs({ name: 'chat' }), autoConnect: false });
  shared.disconnect();
  // An unset listener (`on: { state: maybeListener }`) is no error: the SDK skips it.
  const unset = connectWithSession(URL_NOWHERE, { autoConnect: false, on: { state: undefined } });
  assert.equal(unset.sessions.state, 'disconnected');
  unset.sessions.dispose();
});

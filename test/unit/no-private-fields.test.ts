// Public surface only (issue 16 item 2; docs/architecture.md): src/ never names a `_`-prefixed or
// private field of socket.io, engine.io, express-session or Node objects, so upgrading them cannot
// silently break this library. The scan reads src/ as text (comments stripped) and finds:
//   - `._name` and `['_name']` accesses (our own code uses no `_` names, so any is a foreign one);
//   - the field names of every cast to an object type (`x as { field?: T }`, the way TypeScript code
//     reaches a field a type does not declare): each must be one of ours or a public one, listed below;
//   - `.name` accesses of fields socket.io and engine.io declare `private` without a `_`.
// Known places that other branches are fixing are `todo` tests naming the branch: the lead flips each
// to a plain test (and drops it from KNOWN) after merging that branch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Fields named in object-type casts that are ours, or public API of the library they belong to. */
const CAST_FIELDS = new Map<string, string>([
  ['task', 'ours: a runtime queue item'],
  ['event', 'ours: a runtime queue item'],
  ['record', 'ours: a store read'],
  ['code', 'the `code` of an error (ours, Node\'s, redis\')'],
  ['listener', 'Node: the app listener a `once` wrapper carries (documented with rawListeners)'],
  ['session', 'ours: the `socket.session` property'],
  ['pid', "socket.io: the private id a recovering client sends in the handshake's public `auth` (connectionStateRecovery restores by it)"],
  ['cookie', 'express-session: a session record\'s `cookie`'],
  ['createSession', 'express-session: Store#createSession (public)'],
  ['encrypted', 'Node: tls.TLSSocket#encrypted (public)'],
  ['io', 'the page\'s global `io` (socket.io-client\'s script)'],
  ['connectWithSession', 'ours: what the add-on puts on the global `io`'],
  ['options', 'ours: an options object handed to the SDK'],
  ['retry', 'ours: the SDK `retry` option'],
  ['disconnect', 'socket.io-client Socket#disconnect (public)'],
  ['on', 'EventEmitter#on (public)'],
  ['toJSON', "a value's toJSON, read as JSON.stringify reads it (storable.ts)"],
  ['off', 'EventEmitter#off (public)'],
  ['sessions', 'ours: the SDK `socket.sessions` controller; also read (never written) on express-session\'s MemoryStore to know it is one (store.ts)'],
]);

/** Fields socket.io / engine.io declare `private` without a `_` prefix. */
const PRIVATE_NAMES = ['fns', 'acks', 'nsps', 'parentNsps', 'writeBuffer', 'packetsFn', 'sentCallbackFn'];

/** Places other branches are removing: file, name, branch. */
const KNOWN: Array<{ file: string; name: string; branch: string; what: string }> = [
];

interface Finding {
  file: string;
  line: number;
  name: string;
}

function sources(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

/** Comments become spaces (line numbers kept), so prose about `_events` is not code. */
function stripComments(text: string): string {
  const blank = (m: string) => m.replace(/[^\n]/g, ' ');
  return text.replace(/\/\*[\s\S]*?\*\//g, blank).replace(/(^|[^:'"`\\])\/\/[^\n]*/g, (m, lead: string) => lead + blank(m.slice(lead.length)));
}

function scan(file: string): Finding[] {
  return scanText(readFileSync(file, 'utf8'), relative(SRC, file));
}

function scanText(source: string, file: string): Finding[] {
  const text = stripComments(source);
  const at = (index: number) => text.slice(0, index).split('\n').length;
  const found: Finding[] = [];
  const add = (name: string, index: number) => found.push({ file, line: at(index), name });
  for (const m of text.matchAll(/\.\s*(_[A-Za-z$][\w$]*)/g)) add(m[1]!, m.index!);
  for (const m of text.matchAll(/\[\s*(['"`])(_[\w$]+)\1\s*\]/g)) add(m[2]!, m.index!);
  for (const m of text.matchAll(/\bas\s+(?:unknown\s+as\s+)?\{([^{}]*)\}/g)) {
    // Parameter lists are not fields: `{ on(e: string): void }` names the field `on` only.
    let fields = m[1]!;
    while (/\([^()]*\)/.test(fields)) fields = fields.replace(/\([^()]*\)/g, '');
    for (const k of fields.matchAll(/(?:^|[;,])\s*(?:readonly\s+)?([A-Za-z_$][\w$]*)\s*\??\s*:/g)) if (!CAST_FIELDS.has(k[1]!)) add(k[1]!, m.index!);
  }
  for (const m of text.matchAll(new RegExp(`(?<!\\bthis)\\.\\s*(${PRIVATE_NAMES.join('|')})\\b`, 'g'))) add(m[1]!, m.index!);
  return found;
}

/** `_` names that are our own, so named because the minifier shortens them (rollup.config.mjs): the SDK emitter's map, the fields of connect.ts's Link. */
const OURS = [
  { file: 'client/emitter.ts', name: '_events' },
  ...['_socket', '_events', '_guard', '_close', '_state', '_timer', '_step', '_streak', '_fromConnected', '_retryMin', '_retryMax', '_onInvalid', '_maxReloads', '_reloadWindow', '_on', '_credential', '_tabs', '_io'].map((name) => ({ file: 'client/connect.ts', name })),
];

const isKnown = (f: Finding) => [...KNOWN, ...OURS].some((k) => k.file === f.file && k.name === f.name);

test('src/ names no _-prefixed or private field of socket.io, engine.io, express-session or Node (beyond the known places other branches fix)', () => {
  const findings = sources().flatMap(scan).filter((f) => !isKnown(f));
  assert.deepEqual(findings.map((f) => `${f.file}:${f.line} ${f.name}`), []);
});

test('the scan finds private fields in code, not in comments or strings that merely look like them', () => {
  const names = (code: string) => scanText(code, 'probe.ts').map((f) => f.name);
  assert.deepEqual(names('(socket as unknown as { _events?: object })._events[event] = x;'), ['_events', '_events']);
  assert.deepEqual(names("const e = socket['_events'];"), ['_events']);
  assert.deepEqual(names('(socket as unknown as { fns: unknown[] }).fns = [];'), ['fns', 'fns']);
  assert.deepEqual(names('(engine as { pingTimeoutTimer?: unknown }).pingTimeoutTimer;'), ['pingTimeoutTimer']);
  assert.deepEqual(names('(x as { on(e: string, l: () => void): void }).on;'), []);
  assert.deepEqual(names('this.fns = 1; // socket._events is private\nconst url = "http://x"; /* io._nsps */'), []);
});

for (const known of KNOWN) {
  test(`${known.file}: ${known.what} (branch \`${known.branch}\` removes it)`, { todo: `flip after merging branch ${known.branch}` }, () => {
    const findings = scan(join(SRC, known.file)).filter((f) => f.name === known.name);
    assert.deepEqual(findings, []);
  });
}

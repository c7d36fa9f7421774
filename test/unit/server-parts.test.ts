import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'cookie-signature';
import { unsignSessionCookie } from '../../src/server/session-id.js';
import { originAllowed } from '../../src/server/origin.js';
import { sessionTag } from '../../src/server/invalidation.js';
import { Tombstones } from '../../src/server/tombstones.js';
import type { IncomingMessage } from 'node:http';

test('session cookies unsign with any secret of the rotation list, and nothing else', () => {
  const value = `s:${sign('abc', 'old')}`;
  assert.equal(unsignSessionCookie(value, ['new', 'old']), 'abc');
  assert.equal(unsignSessionCookie(value, ['new']), false);
  assert.equal(unsignSessionCookie('abc', ['old']), false, 'unsigned values are refused');
  assert.equal(unsignSessionCookie(`${value}x`, ['old']), false, 'tampered signatures are refused');
});

const req = (origin: string | undefined, host = 'app.example:3000') => ({ headers: { origin, host } }) as unknown as IncomingMessage;

test('origin: same scheme, host and port by default, allowlist or function when given, absent Origin allowed', () => {
  assert.equal(originAllowed(req('http://app.example:3000'), {}), true);
  assert.equal(originAllowed(req('https://app.example:3000'), {}), false, 'the scheme counts');
  assert.equal(originAllowed(req('HTTP://APP.example:3000'), {}), true, 'compared as origins, not strings');
  assert.equal(originAllowed(req('http://evil.example'), {}), false);
  assert.equal(originAllowed(req('null'), {}), false);
  assert.equal(originAllowed(req(undefined), {}), true);
  assert.equal(originAllowed(req('http://evil.example'), { origins: ['http://evil.example'] }), true);
  assert.equal(originAllowed(req('http://app.example:3000'), { origins: ['https://other.example'] }), false);
  assert.equal(originAllowed(req('http://x'), { origins: (o) => o === 'http://x' }), true);
});

test('tombstones: kept for keepMs on an injected clock; tags never show the raw id', () => {
  let now = 0;
  const t = new Tombstones(1000, 0, () => now);
  t.destroying('s1');
  t.destroyed('s1', true);
  now = 500;
  t.destroying('s2');
  t.destroyed('s2', true);
  assert.equal(t.has('s1'), true);
  now = 1400;
  t.destroying('s3');
  assert.equal(t.has('s1'), false, 'older than keepMs: forgotten');
  assert.equal(t.has('s2'), true);
  assert.ok(!sessionTag('secret-id').includes('secret-id'));
  assert.equal(sessionTag('a'), sessionTag('a'));
});

test('tombstones: a flood of logouts holds at most maxStones, forgetting the oldest first', () => {
  const t = new Tombstones(60_000, 0, () => 0, 1000);
  for (let i = 0; i < 5000; i++) {
    t.destroying(`r${i}`);
    t.destroyed(`r${i}`, true);
  }
  assert.ok(t.size.tombstones <= 1000, `${t.size.tombstones} remembered`);
  assert.equal(t.has('r0'), false, 'the oldest forgotten');
  assert.equal(t.has('r4999'), true, 'the newest kept');
  assert.equal(t.has('r4001'), true);
});

test('tombstones: a failed destroy forgets its tombstone; a confirmed one stays', () => {
  const t = new Tombstones();
  t.destroying('r');
  assert.equal(t.has('r'), true, 'writes are dropped from the moment a destroy starts');
  t.destroyed('r', false);
  assert.equal(t.has('r'), false);
  t.destroying('r');
  t.destroyed('r', true);
  t.destroying('r');
  t.destroyed('r', false);
  assert.equal(t.has('r'), true);
});

test('tombstones: writes that raced a destroy make exactly one more destroy, after the last of them', () => {
  const t = new Tombstones();
  t.writeStarted('r', 'sid');
  t.writeStarted('r', 'sid');
  t.destroying('r');
  assert.equal(t.destroyed('r', true), false, 'writes still under way: not yet');
  assert.equal(t.writeEnded('r'), false, 'one write still under way');
  assert.equal(t.writeEnded('r'), true, 'the last racing write ended: destroy once more');
  assert.equal(t.writeEnded('r'), false, 'never twice');
  const quiet = new Tombstones();
  quiet.writeStarted('q', 'sid');
  quiet.writeEnded('q');
  quiet.destroying('q');
  assert.equal(quiet.destroyed('q', true), false, 'a write that ended before the destroy did not race it');
});

test("tombstones: another node's destroy repeats once for a write of ours within the race window", () => {
  let now = 0;
  const t = new Tombstones(60_000, 5000, () => now);
  t.writeStarted('r', 'sid-r');
  now = 10;
  t.writeEnded('r');
  now = 3000;
  assert.equal(t.remote('r'), 'sid-r', 'our write may have landed after their destroy');
  assert.equal(t.remote('r'), undefined, 'once');
  t.writeStarted('old', 'sid-old');
  t.writeEnded('old');
  now = 20_000;
  assert.equal(t.remote('old'), undefined, 'outside the race window: no repeat');
  t.writeStarted('live', 'sid-live');
  assert.equal(t.remote('live'), undefined, 'under way: repeated when it ends');
  assert.equal(t.writeEnded('live'), true);
  assert.equal(new Tombstones(60_000, 0, () => now).size.writes, 0);
});

test('tombstones: memory stays bounded by the race window and keepMs', () => {
  let now = 0;
  const t = new Tombstones(1000, 100, () => now);
  for (let i = 0; i < 10_000; i++) {
    now = i;
    t.writeStarted(`w${i}`, `sid${i}`);
    t.writeEnded(`w${i}`);
    t.destroying(`d${i}`);
    t.destroyed(`d${i}`, true);
  }
  assert.ok(t.size.writes <= 102, `writes remembered: ${t.size.writes}`);
  assert.ok(t.size.tombstones <= 1002, `tombstones: ${t.size.tombstones}`);
});

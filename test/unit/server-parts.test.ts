import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'cookie-signature';
import { unsignSessionCookie } from '../../src/server/session-id.js';
import { originAllowed } from '../../src/server/origin.js';
import { KeyedQueue } from '../../src/server/queue.js';
import { Tombstones, sessionRoom } from '../../src/server/invalidation.js';
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

test('the keyed queue runs one task at a time per key, and keys independently', async () => {
  const queue = new KeyedQueue();
  const log: string[] = [];
  const task = (name: string, ms: number) => () => new Promise<void>((r) => setTimeout(() => (log.push(name), r()), ms));
  await Promise.all([queue.run('a', task('a1', 30)), queue.run('a', task('a2', 1)), queue.run('b', task('b1', 10))]);
  assert.deepEqual(log, ['b1', 'a1', 'a2']);
  await Promise.resolve();
  assert.equal(queue.size, 0, 'idle keys are forgotten');
  await assert.rejects(queue.run('a', async () => { throw new Error('x'); }), /x/);
  assert.equal(await queue.run('a', async () => 7), 7, 'a failed task does not block the next');
});

test('tombstones remember destroyed ids for a while; rooms never show the raw id', () => {
  const t = new Tombstones(1000);
  t.add('s1', 0);
  t.add('s2', 500);
  assert.equal(t.has('s1'), true);
  t.add('s3', 1400);
  assert.equal(t.has('s1'), false);
  assert.equal(t.has('s2'), true);
  assert.ok(!sessionRoom('secret-id').includes('secret-id'));
  assert.equal(sessionRoom('a'), sessionRoom('a'));
});

// Tickets are standard compact JWEs (dir + A256GCM): a JOSE library opens ours and we open its; expiry,
// tampering, foreign keys and audiences are refused with their reason (on an injected clock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, hkdfSync } from 'node:crypto';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { TicketSealer } from '../../src/server/tickets.js';

const SECRET = 'ticket test secret';
const key = new Uint8Array(hkdfSync('sha256', Buffer.from(SECRET), 'socket.io-sessions', 'ticket key v1', 32));
const kid = createHash('sha256').update(key).digest('base64url').slice(0, 16);
const AUD = 'https://app.example';

test('a JOSE library opens our ticket, with the documented claims', async () => {
  const now = Date.now();
  const { token, expiresAt, expiresIn } = new TicketSealer([SECRET], 60_000).seal('sid-1', AUD, now);
  const { payload, protectedHeader } = await jwtDecrypt(token, key, { issuer: 'socket.io-sessions', audience: AUD });
  assert.deepEqual(protectedHeader, { alg: 'dir', enc: 'A256GCM', kid });
  assert.equal(payload.sid, 'sid-1');
  assert.equal(payload.exp! * 1000, expiresAt);
  assert.ok(expiresIn >= 60_000 && expiresIn < 61_000, 'never less than the TTL, rounded up to a second');
  assert.ok(!token.includes('sid-1'), 'the id is encrypted');
});

test('we open a ticket a JOSE library minted (another language can mint them)', async () => {
  const token = await new EncryptJWT({ sid: 'sid-2' })
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid })
    .setIssuer('socket.io-sessions')
    .setAudience(AUD)
    .setIssuedAt()
    .setExpirationTime('1m')
    .encrypt(key);
  const opened = new TicketSealer([SECRET], 60_000).open(token, AUD);
  assert.equal('sid' in opened && opened.sid, 'sid-2');
});

test('expiry, audience, tampering, foreign keys and odd headers are refused with their reason', () => {
  const sealer = new TicketSealer([SECRET], 10_000);
  const now = 1_700_000_000_000;
  const { token } = sealer.seal('sid-3', AUD, now);
  assert.deepEqual(sealer.open(token, AUD, now + 5_000), { sid: 'sid-3', expiresAt: now + 10_000 });
  assert.deepEqual(sealer.open(token, AUD, now + 10_001), { invalid: 'ticket-expired' });
  assert.deepEqual(sealer.open(token, 'https://evil.example', now), { invalid: 'ticket-audience' });
  const parts = token.split('.');
  const flip = (s: string) => (s[5] === 'A' ? `${s.slice(0, 5)}B${s.slice(6)}` : `${s.slice(0, 5)}A${s.slice(6)}`);
  assert.deepEqual(sealer.open([parts[0], '', parts[2], flip(parts[3]), parts[4]].join('.'), AUD, now), { invalid: 'ticket-tampered' });
  assert.deepEqual(new TicketSealer(['another secret'], 10_000).open(token, AUD, now), { invalid: 'ticket-tampered' });
  // The tag's last character carries 2 unused bits (16 bytes): another spelling of the same bytes is not our token.
  const tag = parts[4]!;
  const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const respelt = tag.slice(0, -1) + last[last.indexOf(tag.at(-1)!) ^ 1];
  assert.deepEqual(Buffer.from(respelt, 'base64url'), Buffer.from(tag, 'base64url'), 'the same bytes');
  assert.deepEqual(sealer.open([...parts.slice(0, 4), respelt].join('.'), AUD, now), { invalid: 'ticket-malformed' });
  const zipped = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid, zip: 'DEF' })).toString('base64url');
  assert.deepEqual(sealer.open([zipped, ...parts.slice(1)].join('.'), AUD, now), { invalid: 'ticket-malformed' });
  // An empty ticket is what the SDK sends when its source says there is no session.
  assert.deepEqual(sealer.open('', AUD, now), { invalid: 'no-session-id' });
  for (const bad of ['a.b.c', `${token}.x`, 'x'.repeat(3000), 42, null, { toString: () => token }]) {
    assert.deepEqual(sealer.open(bad, AUD, now), { invalid: 'ticket-malformed' }, String(bad).slice(0, 20));
  }
});

test('secret rotation: sealed with the first secret, opened with any', () => {
  const old = new TicketSealer(['old'], 10_000).seal('sid-4', AUD);
  const rotated = new TicketSealer(['new', 'old'], 10_000);
  assert.equal('sid' in rotated.open(old.token, AUD), true);
  assert.equal('sid' in new TicketSealer(['old'], 10_000).open(rotated.seal('sid-4', AUD).token, AUD), false);
});

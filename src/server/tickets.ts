/**
 * Session tickets: short-lived, sealed credentials for when the session cookie cannot travel
 * (a socket server on another origin, third-party cookies blocked, Node clients, workers).
 *
 * Format (a standard, so another language can mint and open them): a compact JWE (RFC 7516) with
 * `alg: "dir"`, `enc: "A256GCM"` and a `kid` header; the key is
 * HKDF-SHA256(ikm = secret as UTF-8, salt = "socket.io-sessions", info = "ticket key v1", 32 bytes)
 * for each secret of the rotation list (seal with the first, open with any), and `kid` is the
 * first 16 base64url characters of SHA-256(key). The payload is a JWT claims set: `sid` (the
 * session id: encrypted, so the raw id never reaches page JavaScript), `aud` (the page origin it
 * was minted for), `iss: "socket.io-sessions"`, `iat`, `exp` (seconds).
 *
 * Sealed and opened with node:crypto's AES-256-GCM directly, synchronously, with keys derived
 * once: a JOSE library's general machinery costs more than the rest of a ticket handshake. Tests
 * check that a JOSE library (jose) opens our tickets and that we open its.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { MAX_TICKET_LENGTH, type InvalidReason, type Ticket } from '../protocol.js';

const ISSUER = 'socket.io-sessions';
export { MAX_TICKET_LENGTH };

interface TicketKey {
  kid: string;
  key: Buffer;
  /** The protected header of tickets sealed with this key, encoded once. */
  header: string;
}

function deriveKey(secret: string): TicketKey {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'socket.io-sessions', 'ticket key v1', 32));
  const kid = createHash('sha256').update(key).digest('base64url').slice(0, 16);
  return { kid, key, header: Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid })).toString('base64url') };
}

export type OpenedTicket = { sid: string; expiresAt: number } | { invalid: InvalidReason };

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * A part as we encode it: base64url, and the only spelling of its bytes (a decoder ignores the unused low bits of
 * the last character, so four spellings of the tag would open alike: one ticket, one token string).
 */
const isCanonical = (part: string): boolean => B64URL.test(part) && Buffer.from(part, 'base64url').toString('base64url') === part;

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export class TicketSealer {
  private readonly keys: TicketKey[];

  constructor(
    secrets: string[],
    readonly ttlMs: number,
  ) {
    this.keys = secrets.map(deriveKey);
  }

  seal(sid: string, audience: string, now = Date.now()): Ticket {
    const { key, header } = this.keys[0];
    const iat = Math.floor(now / 1000);
    const exp = Math.ceil((now + this.ttlMs) / 1000); // rounded up: a ticket never lives less than ttlMs
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(header, 'ascii'));
    const claims = JSON.stringify({ sid, iss: ISSUER, aud: audience, iat, exp });
    const ciphertext = Buffer.concat([cipher.update(claims, 'utf8'), cipher.final()]);
    const token = `${header}..${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
    return { token, expiresAt: exp * 1000, expiresIn: exp * 1000 - now };
  }

  /**
   * Open a ticket presented by a client. `audience` is what the request must be: its Origin, or
   * the server's own origin for clients that send none. Never throws: every bad ticket is a reason.
   */
  open(token: unknown, audience: string, now = Date.now()): OpenedTicket {
    // The SDK's tickets part sends '' when its source says there is no session: a ticket page must not fall back to the cookie.
    if (token === '') return { invalid: 'no-session-id' };
    if (typeof token !== 'string' || token.length > MAX_TICKET_LENGTH) return { invalid: 'ticket-malformed' };
    const parts = token.split('.');
    if (parts.length !== 5 || parts[1] !== '' || !parts.every(isCanonical)) return { invalid: 'ticket-malformed' };
    const [encodedHeader, , encodedIv, encodedCiphertext, encodedTag] = parts;
    const header = parseJson(Buffer.from(encodedHeader, 'base64url').toString('utf8'));
    // Only what we mint: no other algorithm, no compression, no critical extensions.
    if (!header || header.alg !== 'dir' || header.enc !== 'A256GCM' || 'zip' in header || 'crit' in header) return { invalid: 'ticket-malformed' };
    const iv = Buffer.from(encodedIv, 'base64url');
    const tag = Buffer.from(encodedTag, 'base64url');
    if (iv.length !== 12 || tag.length !== 16) return { invalid: 'ticket-malformed' };
    // Sealed with a key this server does not hold (or a changed kid): the same as a changed byte.
    const match = this.keys.find((k) => k.kid === header.kid);
    if (!match) return { invalid: 'ticket-tampered' };
    let plaintext: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', match.key, iv);
      decipher.setAAD(Buffer.from(encodedHeader, 'ascii'));
      decipher.setAuthTag(tag);
      plaintext = Buffer.concat([decipher.update(Buffer.from(encodedCiphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return { invalid: 'ticket-tampered' };
    }
    const claims = parseJson(plaintext);
    if (!claims || claims.iss !== ISSUER || typeof claims.exp !== 'number' || typeof claims.sid !== 'string' || claims.sid.length === 0) return { invalid: 'ticket-malformed' };
    if (claims.exp * 1000 <= now) return { invalid: 'ticket-expired' };
    if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now) return { invalid: 'ticket-malformed' };
    if (claims.aud !== audience) return { invalid: 'ticket-audience' };
    return { sid: claims.sid, expiresAt: claims.exp * 1000 };
  }
}

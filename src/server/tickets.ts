/**
 * Session tickets: short-lived, sealed credentials for when the session cookie cannot travel
 * (a socket server on another origin, third-party cookies blocked, Node clients, workers).
 *
 * Format (documented so another language can mint and open them): a compact JWE,
 * `alg: "dir"`, `enc: "A256GCM"`, header `kid`; the key is
 * HKDF-SHA256(ikm = secret as UTF-8, salt = "socket.io-sessions", info = "ticket key v1", 32 bytes)
 * for each secret of the rotation list (seal with the first, open with any), and `kid` is the
 * first 16 base64url characters of SHA-256(key). Claims: `sid` (the session id: encrypted, so
 * the raw id never reaches page JavaScript), `aud` (the page origin it was minted for),
 * `iss: "socket.io-sessions"`, `iat`, `exp` (seconds).
 */
import { createHash, hkdfSync, webcrypto } from 'node:crypto';
import { EncryptJWT, jwtDecrypt, type JWTPayload } from 'jose';
import type { InvalidReason, Ticket } from '../protocol.js';

const ISSUER = 'socket.io-sessions';
/** A ticket is a few hundred characters; anything far larger is refused before parsing. */
export const MAX_TICKET_LENGTH = 2048;

interface TicketKey {
  kid: string;
  /** Imported once (Web Crypto), not at every seal and open. */
  key: Promise<CryptoKey>;
}

function deriveKey(secret: string): TicketKey {
  const raw = new Uint8Array(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'socket.io-sessions', 'ticket key v1', 32));
  return {
    kid: createHash('sha256').update(raw).digest('base64url').slice(0, 16),
    key: webcrypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']),
  };
}

export type OpenedTicket = { sid: string; expiresAt: number } | { invalid: InvalidReason };

export class TicketSealer {
  private readonly keys: TicketKey[];

  constructor(
    secrets: string[],
    readonly ttlMs: number,
  ) {
    this.keys = secrets.map(deriveKey);
  }

  async seal(sid: string, audience: string, now = Date.now()): Promise<Ticket> {
    const [{ kid, key }] = this.keys;
    const iat = Math.floor(now / 1000);
    const exp = Math.ceil((now + this.ttlMs) / 1000); // rounded up: a ticket never lives less than ttlMs
    const token = await new EncryptJWT({ sid })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .encrypt(await key);
    return { token, expiresAt: exp * 1000, expiresIn: exp * 1000 - now };
  }

  /**
   * Open a ticket presented by a client. `audience` is what the request must be: its Origin, or
   * the server's own origin for clients that send none. Never throws: every bad ticket is a reason.
   */
  async open(token: unknown, audience: string): Promise<OpenedTicket> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TICKET_LENGTH) return { invalid: 'ticket-malformed' };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtDecrypt(
        token,
        (header) => {
          const match = this.keys.find((k) => k.kid === header.kid);
          if (!match) throw new Error('unknown kid');
          return match.key;
        },
        { issuer: ISSUER, keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'], requiredClaims: ['exp', 'aud'] },
      ));
    } catch (err) {
      return { invalid: reasonOf(err) };
    }
    if (typeof payload.sid !== 'string' || payload.sid.length === 0) return { invalid: 'ticket-malformed' };
    if (payload.aud !== audience) return { invalid: 'ticket-audience' };
    return { sid: payload.sid, expiresAt: payload.exp! * 1000 };
  }
}

function reasonOf(err: unknown): InvalidReason {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_JWT_EXPIRED') return 'ticket-expired';
  // Authentication failed: a changed byte, or sealed with a key we do not hold.
  if (code === 'ERR_JWE_DECRYPTION_FAILED' || code === 'ERR_JWKS_NO_MATCHING_KEY' || (err as Error).message === 'unknown kid') return 'ticket-tampered';
  return 'ticket-malformed';
}

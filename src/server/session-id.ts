/**
 * Where a handshake's session id comes from: the signed express-session cookie, else a
 * seed-style `cutter(req)`, else a seed-style cookie `parser`. Parsing and unsigning use
 * `cookie` and `cookie-signature`, the libraries express-session itself uses.
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseCookie, serialize } from 'cookie';
import { sign, unsign } from 'cookie-signature';
import type { Cookie } from 'express-session';
import type { ResolvedOptions } from './options.js';
import type { InvalidReason } from '../protocol.js';

export type SessionIdResult = { sid: string } | { invalid: InvalidReason };

/** Unsign an express-session cookie value (`s:<id>.<sig>`) with any of the secrets (rotation: newest first). */
export function unsignSessionCookie(value: string, secrets: string[]): string | false {
  if (!value.startsWith('s:')) return false;
  for (const secret of secrets) {
    // cookie-signature >= 1.2 compares in constant time (crypto.timingSafeEqual).
    const sid = unsign(value.slice(2), secret);
    if (sid !== false) return sid;
  }
  return false;
}

/** The `Set-Cookie` value express-session would send for `sid` with these cookie options, expiring at `expires`. */
export function sessionCookie(name: string, sid: string, secret: string, options: Partial<Cookie>, expires: Date): string {
  const { path = '/', domain, httpOnly = true, secure, sameSite, partitioned, priority } = options as Partial<Cookie> & { partitioned?: boolean; priority?: 'low' | 'medium' | 'high' };
  return serialize(name, `s:${sign(sid, secret)}`, {
    expires,
    path,
    domain,
    httpOnly,
    secure: secure === true,
    sameSite: sameSite as boolean | 'lax' | 'strict' | 'none' | undefined,
    partitioned,
    priority,
  });
}

/** A raw value from a cutter or parser: signed values are unsigned, unsigned ones taken as they are (seed behaviour). */
function fromRawValue(value: unknown, secrets: string[]): SessionIdResult | undefined {
  if (typeof value !== 'string' || value.length === 0) return undefined;
  if (value.startsWith('s:') && secrets.length > 0) {
    const sid = unsignSessionCookie(value, secrets);
    return sid === false ? { invalid: 'bad-signature' } : { sid };
  }
  return { sid: value };
}

function runParser(parser: NonNullable<ResolvedOptions['parser']>, req: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      parser(req, {}, (err?: unknown) => (err ? reject(err) : resolve()));
    } catch (err) {
      reject(err);
    }
  });
}

/**
 * A cookie value as express-session reads it (its `cookie` 0.7): a value in double quotes loses
 * them, then it is URI-decoded (left as it is when that fails). (`cookie` 1.x keeps the quotes: a
 * quoted session cookie that works over HTTP was refused here as `bad-signature`.)
 */
function decodeAsExpressSession(value: string): string {
  const unquoted = value.length > 1 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  if (!unquoted.includes('%')) return unquoted;
  try {
    return decodeURIComponent(unquoted);
  } catch {
    return unquoted;
  }
}

/** Find the session id of a handshake. Throws only if a user-supplied cutter or parser throws. */
export async function sessionIdFrom(req: IncomingMessage, options: ResolvedOptions): Promise<SessionIdResult> {
  const { name, secrets, cutter, parser } = options;
  const header = req.headers.cookie;
  if (header && secrets.length > 0) {
    const value = parseCookie(header, { decode: decodeAsExpressSession })[name];
    if (value !== undefined) {
      const sid = unsignSessionCookie(value, secrets);
      return sid === false ? { invalid: 'bad-signature' } : { sid };
    }
  }
  if (cutter) {
    const found = fromRawValue(await cutter(req), secrets);
    if (found) return found;
  }
  if (parser) {
    await runParser(parser, req);
    const parsed = req as IncomingMessage & { signedCookies?: Record<string, unknown>; cookies?: Record<string, unknown> };
    const signed = parsed.signedCookies?.[name];
    if (signed === false) return { invalid: 'bad-signature' };
    if (typeof signed === 'string' && signed.length > 0) return { sid: signed };
    // What is left in `cookies` is unsigned (a parser with a secret takes signed values out), or
    // signed and unchecked (a parser without one). express-session ignores an unsigned session
    // cookie; here it is refused as one whose signature fails, never taken as an id.
    const raw = parsed.cookies?.[name];
    if (typeof raw === 'string' && raw.length > 0) return raw.startsWith('s:') && secrets.length > 0 ? fromRawValue(raw, secrets)! : { invalid: 'bad-signature' };
  }
  return { invalid: 'no-session-id' };
}

/** The names of the cookies a request carries (never their values), for the debug log of a missing session cookie. */
export function cookieNames(req: IncomingMessage): string[] {
  const header = req.headers.cookie;
  return header ? Object.keys(parseCookie(header)) : [];
}

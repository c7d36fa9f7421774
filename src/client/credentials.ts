/**
 * Where a connection's credential comes from, and keeping it fresh. The session cookie needs
 * nothing from us; a ticket (embedded in the served script or a `<meta>`, fetched from the token
 * endpoint, or returned by the app's function) is reused while fresh, renewed when near its end,
 * and never used once expired. Renewal retries transient failures with backoff by itself.
 */
import { CLIENT_SCRIPT_NAME, EMBED_GLOBAL, EMBED_UNAVAILABLE, ErrorCode, MAX_TICKET_LENGTH, type Ticket } from '../protocol.js';

/**
 * A credential source failed. `retry`: transient (network, 5xx, a function that threw), tried
 * again with backoff; otherwise there is no session (401/403, or an error with code SESSION_INVALID).
 * This module ships apart from the core, so an app's SESSION_INVALID error is recognised by its
 * `code`, not by its class.
 */
export class CredentialError extends Error {
  constructor(readonly retry: boolean, options?: { cause?: unknown }) {
    super(retry ? 'credential source unavailable' : 'no session for a credential', options);
  }
}

/** What an app's credential function may return: a bare token, or a ticket with its lifetime. */
export type CredentialResult = string | { token: string; expiresAt?: number; expiresIn?: number };

/** `'auto'`: an embedded ticket while fresh, else `tokenUrl` when given, else the cookie. */
export type CredentialSource = 'auto' | 'cookie' | 'embedded' | 'fetch' | ((ctx: { renewal: boolean }) => Promise<CredentialResult>);

interface Held {
  token: string;
  /** Local clock, ms. */
  expiresAt: number;
  lifetime: number;
}

export interface CredentialsOptions {
  source: CredentialSource;
  tokenUrl?: string;
  /** The served script, re-requested with a cache-busting parameter when there is no token endpoint. */
  scriptUrl?: string;
  /** Waits before the next try after a transient failure; `step` counts from 0. */
  wait(step: number): Promise<void>;
}

/** The served add-on's own URL, when this code runs as that script (classic scripts only). */
const servedScript = ((typeof document !== 'undefined' && (document.currentScript as HTMLScriptElement | null)?.src) || '').split('?')[0];
export const defaultScriptUrl = servedScript.endsWith(`/${CLIENT_SCRIPT_NAME}`) ? servedScript : undefined;

/** A usable credential from what a source gave, or undefined. A token the server would refuse unread (over MAX_TICKET_LENGTH) is none. */
function normalize(result: CredentialResult | Ticket | null | undefined, now = Date.now()): Held | undefined {
  if (typeof result === 'string') result = { token: result };
  const token = result?.token;
  if (typeof token !== 'string' || !token || token.length > MAX_TICKET_LENGTH) return undefined;
  const { expiresIn = Infinity, expiresAt = Infinity } = result!;
  // The relative lifetime is immune to clock skew, but not to caching: a cached script still says
  // "60 s" hours later. Take whichever ends first; at worst a ticket is renewed early.
  const lifetime = Math.min(expiresIn, expiresAt - now);
  return { token, expiresAt: now + lifetime, lifetime: expiresIn === Infinity ? lifetime : expiresIn };
}

/** ms before expiry at which a credential is renewed: a quarter of its lifetime, at most 10 s. */
const renewAt = (held: Held) => held.expiresAt - Math.min(10_000, held.lifetime / 4);
const fresh = (held: Held | undefined): held is Held => !!held && renewAt(held) > Date.now();

/** The page's embedded ticket, or EMBED_UNAVAILABLE when the served script says the store failed. */
function embedded(): Held | typeof EMBED_UNAVAILABLE | undefined {
  const ticket = (globalThis as unknown as Record<string, { ticket?: Ticket | typeof EMBED_UNAVAILABLE } | undefined>)[EMBED_GLOBAL]?.ticket;
  if (ticket) return ticket === EMBED_UNAVAILABLE ? ticket : normalize(ticket);
  const meta = typeof document !== 'undefined' ? document.querySelector('meta[name="socket.io-sessions-ticket"]') : null;
  try {
    return meta ? normalize(JSON.parse(meta.getAttribute('content') ?? '')) : undefined;
  } catch {
    return undefined;
  }
}

async function request(url: string, parse: (res: Response) => Promise<CredentialResult | Ticket | null>): Promise<Held> {
  let res: Response;
  try {
    // A request that never answers must not hold the handshake forever: it is retried instead.
    res = await fetch(url, { credentials: 'include', cache: 'no-store', signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CredentialError(true, { cause: err });
  }
  if (res.status === 401 || res.status === 403) throw new CredentialError(false);
  // A 5xx, or a 200 whose body is not a ticket (a proxy's or captive portal's page, a truncated
  // body, `{}`): the source is broken, not the session gone. Retried with backoff, never taken for
  // "no session" (which would start the invalid-session policy: page reloads).
  const held = res.ok && normalize(await parse(res).catch((err: unknown) => (err instanceof CredentialError ? Promise.reject(err) : null)));
  if (!held) throw new CredentialError(true);
  return held;
}

/**
 * The served script ends with `...ticket=<json>;`: read it back from a cache-busted copy.
 * `ticket=null`: the server has no session for us; `ticket="unavailable"`: its store failed (retried).
 */
async function ticketFromScript(res: Response): Promise<Ticket | null> {
  const match = /\.ticket=(.*);\s*$/.exec(await res.text());
  const ticket = match ? (JSON.parse(match[1]!) as Ticket | typeof EMBED_UNAVAILABLE | null) : null;
  if (match && (!ticket || ticket === EMBED_UNAVAILABLE)) throw new CredentialError(!!ticket);
  return ticket as Ticket | null;
}

export function createCredentials({ source, tokenUrl, scriptUrl = defaultScriptUrl, wait }: CredentialsOptions) {
  const found = source === 'auto' || source === 'embedded' ? embedded() : undefined;
  let held = found === EMBED_UNAVAILABLE ? undefined : found;
  let inflight: Promise<Held | undefined> | undefined;
  // An embedded ticket counts even when stale (a cached page): it is replaced before use, when it can be.
  // So does the served script's "unavailable": a ticket is fetched from the same sources, with backoff.
  const kind = source !== 'auto' ? source : found && ((held && fresh(held)) || tokenUrl || scriptUrl) ? 'embedded' : tokenUrl ? 'fetch' : 'cookie';

  const fetchOnce = (): Promise<Held | undefined> => {
    if (typeof kind === 'function') {
      return kind({ renewal: held !== undefined }).then((r) => normalize(r), (err) => {
        throw new CredentialError((err as { code?: string } | null)?.code !== ErrorCode.SESSION_INVALID, { cause: err });
      });
    }
    if (kind === 'cookie') return Promise.resolve(undefined);
    if (tokenUrl) return request(tokenUrl, (res) => res.json());
    if (!scriptUrl) return Promise.reject(new CredentialError(false));
    return request(`${scriptUrl}${scriptUrl.includes('?') ? '&' : '?'}_=${Date.now()}`, ticketFromScript);
  };

  const renew = (): Promise<Held | undefined> =>
    (inflight ??= (async () => {
      for (let step = 0; ; step++) {
        try {
          return (held = await fetchOnce());
        } catch (err) {
          if (!(err instanceof CredentialError && err.retry)) throw err;
          await wait(step);
        }
      }
    })().finally(() => (inflight = undefined)));

  return {
    /** A credential fit to use now: the held one while fresh, else a renewed one (undefined: the cookie). */
    get: (): Promise<Held | undefined> => (fresh(held) ? Promise.resolve(held) : renew()),
    renew,
    /** The server refused it: never use it again. */
    discard() {
      held = undefined;
    },
    /** The server said how long the credential in use lasts. */
    expiresIn(ms: number) {
      if (held) held = { ...held, expiresAt: Date.now() + ms, lifetime: held.lifetime === Infinity ? ms : held.lifetime };
    },
    /** ms until the held credential should be renewed. */
    renewIn(): number | undefined {
      return held && held.expiresAt !== Infinity ? Math.max(0, renewAt(held) - Date.now()) : undefined;
    },
  };
}

export type Credentials = ReturnType<typeof createCredentials>;

/**
 * Set-up mistakes named with their fix, where the user looks: the refused client's error message
 * (`err.message`, `err.data.message`), and once per cause a line on the server's console,
 * without DEBUG. Bounded: causes a client chooses (its Origin) are told for the first
 * {@link MAX_TOLD} only, so no client can flood the log; `DEBUG=socket.io-sessions:handshake` still logs every refusal.
 */
import type { IncomingMessage } from 'node:http';
import type { InvalidReason } from '../protocol.js';
import { OriginNotAllowedError, SessionInvalidError, type SessionError } from '../errors.js';
import { ownOrigin } from './origin.js';
import type { ResolvedOptions } from './options.js';
import type { StoreHub } from './store.js';

/** Causes told per kind; the next one is told as "more", then nothing. */
export const MAX_TOLD = 100;
/** Characters of a client-chosen value (an Origin) shown in a line. */
const MAX_SHOWN = 200;
/** `not-found` refusals, while nothing ever wrote the store given to sessions(), before that store is named as the likely cause. */
const SUSPECT_STORE_AFTER = 3;

/** `err` saying `hint` too: in its message and in `err.data.message`, which the client receives. */
function explained<E extends SessionError>(err: E, hint: string | undefined): E {
  if (hint) err.message = err.data.message = `${err.message}: ${hint}`;
  return err;
}

const shown = (value: string) => JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value);

/** Whether the browser reached this server over https (itself, or a TLS proxy saying so). */
function overHttps(req: IncomingMessage): boolean {
  const proto = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https' || ownOrigin(req).startsWith('https:');
}

export class Advice {
  private readonly told = new Map<string, Set<string>>();
  private notFoundUnwritten = 0;

  constructor(
    private readonly options: Pick<ResolvedOptions, 'name' | 'origins'>,
    private readonly hub: Pick<StoreHub, 'seen'>,
    private readonly warn: (line: string) => void = (line) => console.warn(line),
  ) {}

  /** The refusal of a cookie handshake or token request from a page origin that `origins` refuses (the server's line once per origin). */
  originRefused(req: IncomingMessage): OriginNotAllowedError {
    return explained(new OriginNotAllowedError(), this.originHint(req));
  }

  /** A refusal as `reason` (of `req`, when it had no session id), naming the likely set-up mistake when there is one (told once on the server). */
  invalid(reason: InvalidReason, req?: IncomingMessage): SessionInvalidError {
    return explained(new SessionInvalidError(reason), this.invalidHint(reason, req));
  }

  private originHint(req: IncomingMessage): string {
    const origin = String(req.headers.origin);
    // The opaque origin: never advised as an allowed origin (every site's sandboxed iframe sends it).
    if (origin === 'null') {
      this.once('origins refused', origin, () =>
        'refused the session to a page of the opaque origin "null" (a sandboxed iframe, a file: or data: page, or a request redirected across origins). ' +
          'Do not allow "null" in sessions()\'s "origins" option: any site can send it from a sandboxed iframe. Serve the page from an origin of its own and allow that one.',
      );
      return 'the page has the opaque origin "null" (a sandboxed iframe, a file: or data: page), which cannot be allowed safely';
    }
    const allowed = this.options.origins === undefined ? `by default only this server's own origin, ${shown(ownOrigin(req))}` : 'it refused this one';
    this.once('origins refused', origin, () =>
      `refused the session to a page of origin ${shown(origin)}: not allowed by sessions()'s "origins" option (${allowed}). ` +
        `socket.io's "cors" option does not cover the session. If pages of that origin should use it: sessions(io, { origins: [${shown(origin)}] }).`,
    );
    return `the page origin ${shown(origin)} is not in the server's sessions() "origins" option (socket.io's "cors" does not cover it)`;
  }

  private invalidHint(reason: InvalidReason, req?: IncomingMessage): string | undefined {
    if (reason === 'bad-signature') return this.badSignature();
    if (reason === 'not-found') return this.notFound();
    if (reason === 'no-session-id' && req) return this.noCookie(req);
    return undefined;
  }

  private badSignature(): string {
    this.once('secret', 'secret', () =>
      `refused a session cookie (${shown(this.options.name)}) signed with none of sessions()'s "secret" values (bad-signature). ` +
        "If express-session, or another node of this app, signs with another secret, give sessions() the same \"secret\" (during a rotation a list: ['new', 'old']).",
    );
    return 'the session cookie is not signed with the secret given to sessions() (it must be express-session\'s, the same on every node)';
  }

  /** Sessions that express-session wrote to another store object never reach the one sessions() reads. */
  private notFound(): string | undefined {
    if (this.hub.seen.written || ++this.notFoundUnwritten < SUSPECT_STORE_AFTER) return undefined;
    this.once('store', 'store', () =>
      `${this.notFoundUnwritten} handshakes had a correctly signed session cookie whose session is not in the "store" given to sessions(), and nothing has written a session to that store object. ` +
        'Likely cause: express-session was given another store instance (two `new MemoryStore()`, two clients): pass the same object as "store" to both. (After a restart with a store that does not persist, this is expected.)',
    );
    return 'the store given to sessions() has no session for this cookie and has never been written (is express-session using another store instance?)';
  }

  private noCookie(req: IncomingMessage): string {
    const { name } = this.options;
    const cookie = this.hub.seen.cookie;
    const fix =
      cookie && String(cookie.sameSite).toLowerCase() === 'none' && cookie.secure !== true
        ? ["sameSite: 'none' without secure: true", "browsers refuse such a cookie: add cookie.secure: true (and serve over https)"]
        : cookie?.secure === true && !overHttps(req)
          ? ['secure: true, and this request came over http', "browsers never store or send a Secure cookie over http: serve over https (behind a TLS proxy: app.set('trust proxy', 1)), or set cookie.secure only where that holds"]
          : undefined;
    if (!fix) return `no cookie named ${shown(name)} was sent`;
    this.once('cookie', fix[0]!, () => `handshakes and requests come without the session cookie ${shown(name)}: express-session sets it with ${fix[0]}; ${fix[1]}.`);
    return `no cookie named ${shown(name)} was sent: express-session sets it with ${fix[0]} (${fix[1]})`;
  }

  /** `line` the first time `cause` of `kind` is met; past {@link MAX_TOLD} causes of a kind, one line saying that more are not told. */
  private once(kind: string, cause: string, line: () => string): void {
    let causes = this.told.get(kind);
    if (!causes) this.told.set(kind, (causes = new Set()));
    if (causes.has(cause) || causes.size > MAX_TOLD) return;
    causes.add(cause);
    this.warn(
      causes.size > MAX_TOLD
        ? `socket.io-sessions: more than ${MAX_TOLD} ${kind}; not logging further ones (DEBUG=socket.io-sessions:handshake logs every refusal)`
        : `socket.io-sessions: ${line()}`,
    );
  }
}

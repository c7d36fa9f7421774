/**
 * Firefox and WebKit behind one thin driver interface, for the engines suite: open a tab, go to a
 * URL, evaluate, go back, close, go offline where the driver can. Debian's own builds, nothing
 * downloaded: Firefox ESR through puppeteer-core over WebDriver BiDi, WebKitGTK's MiniBrowser
 * through classic WebDriver (WebKitWebDriver), spoken by a small fetch-based client below.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import puppeteer, { type Browser as PuppeteerBrowser, type Page as PuppeteerPage } from 'puppeteer-core';
import { freePort, terminate } from './reference-server.js';

export type EngineName = 'firefox' | 'webkit';

/** One tab. `evaluate` takes a function (serialised: it sees only its JSON arguments) or an expression. */
export interface EngineTab {
  goto(url: string): Promise<void>;
  evaluate<T, A extends unknown[] = []>(fn: ((...args: A) => T | Promise<T>) | string, ...args: A): Promise<T>;
  back(): Promise<void>;
  close(): Promise<void>;
  /** Cuts the tab off the network (and back); undefined where the driver cannot (WebKit). */
  setOffline?: (offline: boolean) => Promise<void>;
}

/** A fresh cookie jar and storage: the tabs of one "browser" of one user. */
export interface EngineContext {
  newTab(): Promise<EngineTab>;
  close(): Promise<void>;
}

export interface Engine {
  readonly name: EngineName;
  /** What the driver reports, e.g. `firefox/153.8.0` or `MiniBrowser 2.50.6`. */
  readonly version: string;
  newContext(): Promise<EngineContext>;
  close(): Promise<void>;
}

export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER_PATH = process.env.WEBKIT_DRIVER_PATH ?? '/usr/bin/WebKitWebDriver';
export const MINIBROWSER_PATH = process.env.MINIBROWSER_PATH ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

/** The binaries an engine needs; the first one missing, or undefined when all are there. */
export function missingBinary(name: EngineName): string | undefined {
  const needed = name === 'firefox' ? [FIREFOX_PATH] : [WEBKIT_DRIVER_PATH, MINIBROWSER_PATH, ...(process.env.DISPLAY ? [] : ['/usr/bin/Xvfb'])];
  return needed.find((path) => !existsSync(path));
}

export function launchEngine(name: EngineName): Promise<Engine> {
  return name === 'firefox' ? launchFirefox() : launchWebKit();
}

/**
 * The function's source called with its arguments, as one expression. tsx compiles tests with
 * esbuild's keepNames, so the source may call `__name`, which the page does not have.
 */
function expression(fn: ((...args: never[]) => unknown) | string, args: unknown[]): string {
  if (typeof fn === 'string') return fn;
  return `(() => { const __name = (f) => f; return (${fn.toString()})(...${JSON.stringify(args)}); })()`;
}

async function launchFirefox(): Promise<Engine> {
  const browser: PuppeteerBrowser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    protocol: 'webDriverBiDi',
    headless: true,
    timeout: 30_000,
  });
  const tabOf = (page: PuppeteerPage): EngineTab => ({
    goto: async (url) => void (await page.goto(url, { waitUntil: 'load', timeout: 15_000 })),
    evaluate: (fn, ...args) => page.evaluate(expression(fn as never, args)) as never,
    back: async () => void (await page.goBack({ waitUntil: 'load', timeout: 15_000 })),
    close: () => page.close(),
    setOffline: (offline) => page.setOfflineMode(offline),
  });
  return {
    name: 'firefox',
    version: await browser.version(),
    async newContext() {
      const context = await browser.createBrowserContext();
      return { newTab: async () => tabOf(await context.newPage()), close: () => context.close() };
    },
    close: () => browser.close(),
  };
}

/** Every process started here, killed when the test process ends even if a test forgot to. */
const processes = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of processes) proc.kill('SIGKILL');
});

function track(proc: ChildProcess): ChildProcess {
  processes.add(proc);
  proc.once('exit', () => processes.delete(proc));
  return proc;
}

/** An Xvfb on a display it picks itself (`-displayfd`): WebKitGTK needs a display even to be driven. */
async function startXvfb(): Promise<{ display: string; proc: ChildProcess }> {
  const proc = track(spawn('Xvfb', ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1280x800x24'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const display = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`Xvfb gave no display within 10 s: ${stderr}`)), 10_000);
    proc.stdio[3]!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) clearTimeout(timer), resolve(`:${out.trim()}`);
    });
    proc.once('exit', (code) => (clearTimeout(timer), reject(new Error(`Xvfb exited (${code}): ${stderr}`))));
  });
  return { display, proc };
}

/** A WebDriver error answer, with the command that got it. */
class WebDriverError extends Error {
  override name = 'WebDriverError';
}

/** Classic WebDriver over fetch: just the commands the suite uses. */
class WebDriverSession {
  /** Commands go one at a time: the window they act on is the session's current one. */
  private queue: Promise<unknown> = Promise.resolve();
  private current: string | undefined;

  constructor(
    private readonly base: string,
    readonly id: string,
  ) {}

  static async create(base: string, capabilities: object, timeoutMs: number): Promise<{ session: WebDriverSession; version: string }> {
    const value = (await request(base, 'POST', '/session', { capabilities: { alwaysMatch: capabilities } }, timeoutMs)) as {
      sessionId: string;
      capabilities: { browserName: string; browserVersion: string };
    };
    return { session: new WebDriverSession(base, value.sessionId), version: `${value.capabilities.browserName} ${value.capabilities.browserVersion}` };
  }

  /** Runs `commands` with `handle` as the current window, after every command queued before. */
  in<T>(handle: string | undefined, commands: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      if (handle && handle !== this.current) await this.send('POST', '/window', { handle });
      this.current = handle ?? this.current;
      return commands();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  send(method: string, path: string, body?: unknown, timeoutMs = 20_000): Promise<unknown> {
    return request(this.base, method, `/session/${this.id}${path}`, body, timeoutMs);
  }

  async newWindow(): Promise<string> {
    return ((await this.in(undefined, () => this.send('POST', '/window/new', { type: 'tab' }))) as { handle: string }).handle;
  }

  async closeWindow(handle: string): Promise<void> {
    await this.in(handle, () => this.send('DELETE', '/window'));
    this.current = undefined;
  }
}

async function request(base: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const res = await fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? (method === 'POST' ? '{}' : undefined) : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const { value } = (await res.json()) as { value: unknown };
  if (!res.ok) {
    const { error, message } = value as { error: string; message: string };
    throw new WebDriverError(`${method} ${path}: ${error}: ${message}`);
  }
  return value;
}

/** Waits until WebKitWebDriver answers /status, or throws after `timeoutMs`. */
async function driverReady(base: string, driver: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (driver.exitCode !== null) throw new Error(`WebKitWebDriver exited (${driver.exitCode}): ${output()}`);
    try {
      await request(base, 'GET', '/status', undefined, 1000);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`WebKitWebDriver not ready in ${timeoutMs} ms: ${String(err)} ${output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100)); // a poll, until the deadline
    }
  }
}

async function launchWebKit(): Promise<Engine> {
  const xvfb = process.env.DISPLAY ? undefined : await startXvfb();
  const port = await freePort();
  const driver = track(
    spawn(WEBKIT_DRIVER_PATH, [`--port=${port}`, '--host=127.0.0.1'], {
      env: { ...process.env, ...(xvfb ? { DISPLAY: xvfb.display } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  driver.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  driver.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stop = async () => {
    await terminate(driver, 3000);
    if (xvfb) await terminate(xvfb.proc, 3000);
  };
  try {
    const base = `http://127.0.0.1:${port}`;
    await driverReady(base, driver, () => output, 15_000);
    // Without a display, session creation hangs rather than failing: hence its own deadline.
    const { session, version } = await WebDriverSession.create(
      base,
      { browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { binary: MINIBROWSER_PATH, args: ['--automation'] } },
      30_000,
    );
    await session.send('POST', '/timeouts', { script: 20_000, pageLoad: 15_000 });
    // The session ends when its last window closes: this one stays open, on about:blank, between contexts.
    const home = ((await session.send('GET', '/window')) as string);
    return {
      name: 'webkit',
      version,
      newContext: async () => webKitContext(session, home),
      close: async () => {
        await session.send('DELETE', '', undefined, 5000).catch(() => undefined);
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * WebDriver classic has no contexts: tabs of one browser share its cookies. A context here is a
 * set of windows; closing it closes them and deletes the cookies and storage of every origin
 * they visited, so the next context starts as a new user.
 */
function webKitContext(session: WebDriverSession, home: string): EngineContext {
  const windows = new Set<string>();
  const origins = new Set<string>();
  const tabOf = (handle: string): EngineTab => ({
    goto: (url) => session.in(handle, async () => void (origins.add(new URL(url).origin), await session.send('POST', '/url', { url }))),
    evaluate: (fn, ...args) =>
      session.in(handle, async () => {
        const script = `const done = arguments[0]; Promise.resolve().then(() => ${expression(fn as never, args)}).then((value) => done({ value }), (err) => done({ error: String(err && err.stack || err) }));`;
        const result = (await session.send('POST', '/execute/async', { script, args: [] })) as { value?: unknown; error?: string } | null;
        if (result?.error) throw new Error(`page: ${result.error}`);
        return result?.value as never;
      }),
    back: () => session.in(handle, async () => void (await session.send('POST', '/back'))),
    close: async () => {
      windows.delete(handle);
      await session.closeWindow(handle);
    },
  });
  return {
    async newTab() {
      const handle = await session.newWindow();
      windows.add(handle);
      return tabOf(handle);
    },
    async close() {
      for (const handle of windows) await session.closeWindow(handle).catch(() => undefined);
      windows.clear();
      await session.in(home, async () => {
        for (const origin of origins) {
          await session.send('POST', '/url', { url: `${origin}/favicon.ico` }).catch(() => undefined);
          await session.send('DELETE', '/cookie').catch(() => undefined);
          await session.send('POST', '/execute/sync', { script: 'localStorage.clear(); sessionStorage.clear();', args: [] }).catch(() => undefined);
        }
        await session.send('POST', '/url', { url: 'about:blank' });
      });
    },
  };
}

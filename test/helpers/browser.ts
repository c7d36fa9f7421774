/**
 * Real-browser helpers: the system's Debian Chromium driven by playwright-core (no browser
 * download), plus a recorder of what a page did (console lines, main-frame navigations) that
 * survives reloads, and a poll that does too.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Launches headless Chromium from `/usr/bin/chromium` (override with env CHROMIUM_PATH).
 * `bfcache`: with the back/forward cache, which Playwright turns off by default.
 */
export function launchBrowser({ bfcache = false }: { bfcache?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    ignoreDefaultArgs: bfcache ? ['--disable-back-forward-cache'] : undefined,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** One thing a page did, in the order it happened. */
export type PageEvent = { type: 'console'; text: string } | { type: 'navigation'; url: string } | { type: 'network'; text: string };

/**
 * Records a page's console lines and main-frame navigations from the moment it is created.
 * Listeners are on the Page, so they keep recording across reloads.
 */
export class PageRecorder {
  readonly events: PageEvent[] = [];

  constructor(readonly page: Page) {
    page.on('console', (msg) => this.events.push({ type: 'console', text: msg.text() }));
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) this.events.push({ type: 'navigation', url: frame.url() });
    });
    // The SDK's own requests (engine.io, the served script, tokens), for the dump of a failure.
    const path = (url: string) => url.replace(/^https?:\/\/[^/]+/, '').slice(0, 90);
    const ours = (url: string) => /\/socket\.io\/|socket\.io-sessions/.test(url);
    page.on('request', (req) => ours(req.url()) && this.events.push({ type: 'network', text: `-> ${req.method()} ${path(req.url())}` }));
    page.on('requestfinished', (req) => ours(req.url()) && this.events.push({ type: 'network', text: `<- ${path(req.url())}` }));
    page.on('requestfailed', (req) => ours(req.url()) && this.events.push({ type: 'network', text: `x ${path(req.url())} ${req.failure()?.errorText ?? ''}` }));
    page.on('websocket', (ws) => {
      this.events.push({ type: 'network', text: `ws open ${path(ws.url())}` });
      ws.on('close', () => this.events.push({ type: 'network', text: `ws close ${path(ws.url())}` }));
      ws.on('framesent', (f) => this.events.push({ type: 'network', text: `ws >> ${String(f.payload).slice(0, 60)}` }));
      ws.on('framereceived', (f) => this.events.push({ type: 'network', text: `ws << ${String(f.payload).slice(0, 60)}` }));
    });
  }

  /** Main-frame navigations so far (the first `goto` counts as one). */
  get navigations(): number {
    return this.events.filter((e) => e.type === 'navigation').length;
  }

  /** Console lines, optionally only those after event index `from`. */
  consoleLines(from = 0): string[] {
    return this.events.slice(from).flatMap((e) => (e.type === 'console' ? [e.text] : []));
  }

  /** Index of the first event at or after `from` matching `predicate`, or -1. */
  indexOf(predicate: (e: PageEvent) => boolean, from = 0): number {
    for (let i = from; i < this.events.length; i++) if (predicate(this.events[i]!)) return i;
    return -1;
  }

  /** A readable dump for assertion messages. */
  dump(): string {
    return this.events.map((e) => (e.type === 'navigation' ? `  navigate: ${e.url}` : `  ${e.type}: ${e.text}`)).join('\n');
  }
}

/**
 * Polls `read()` (which may use `page.evaluate`) until `accept(value)` holds. A navigation
 * that destroys the execution context mid-read just means "try again", so this works across
 * page reloads. On timeout it throws with the last value seen and `describe()`'s context.
 */
export async function waitUntil<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  { timeout = 10_000, interval = 50, what = 'condition', describe = () => '' }: {
    timeout?: number;
    interval?: number;
    what?: string;
    describe?: () => string;
  } = {},
): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await read();
      lastError = undefined;
      if (accept(last)) return last;
    } catch (err) {
      lastError = err; // typically "Execution context was destroyed" during a reload
    }
    if (Date.now() > deadline) {
      const seen = lastError ? `error ${String(lastError)}` : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last seen: ${seen}\n${describe()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The text content of `selector` on the current document, or null if absent. */
export function textOf(page: Page, selector: string): Promise<string | null> {
  return page.evaluate((sel) => document.querySelector(sel)?.textContent ?? null, selector);
}

/** A tab of a shared-tabs test: its page, what it logged, and the errors it threw. */
export interface Tab {
  page: Page;
  rec: PageRecorder;
  errors: string[];
}

/** A new tab of `context` at `url`, recorded, listed in `tabs`. */
export async function openTab(context: BrowserContext, tabs: Tab[], url: string): Promise<Tab> {
  const page = await context.newPage();
  const tab: Tab = { page, rec: new PageRecorder(page), errors: [] };
  page.on('pageerror', (err) => tab.errors.push(`pageerror: ${err.message}`));
  tabs.push(tab);
  await page.goto(url);
  return tab;
}

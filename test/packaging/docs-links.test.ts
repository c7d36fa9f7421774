/**
 * The README and docs/ link to each other by relative paths and #headings: every such link points
 * to a file that exists and, when it names a heading, to a heading of that file (GitHub's anchors).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's anchor of a heading: lower case, punctuation dropped (but - and _), spaces to dashes. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

/** The text outside code fences. */
const prose = (markdown: string) => markdown.replace(/^```[\s\S]*?^```$/gm, '');

function anchorsOf(file: string): Set<string> {
  const headings = [...prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!));
  return new Set(headings);
}

test('every relative link of README.md and docs/*.md points to a file that exists, and to a heading it has', () => {
  const broken: string[] = [];
  for (const page of PAGES) {
    const text = prose(readFileSync(join(ROOT, page), 'utf8'));
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue; // https:, mailto:
      const [path, hash] = target!.split('#');
      const file = path ? join(ROOT, dirname(page), path) : join(ROOT, page);
      if (!existsSync(file)) broken.push(`${page}: ${target} (no ${relative(ROOT, file)})`);
      else if (hash && file.endsWith('.md') && !anchorsOf(file).has(hash)) broken.push(`${page}: ${target} (no heading #${hash})`);
    }
  }
  assert.deepEqual(broken, []);
});

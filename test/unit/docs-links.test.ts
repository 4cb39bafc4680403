// README.md and docs/*.md: every relative link and image points at a file of the repository
// (and at a heading that exists, for #anchors), and none points outside it. A moved file
// or a renamed heading would otherwise leave a stranger with a dead link.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCUMENTS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

/** The text outside fenced code blocks (links there are examples, not links). */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchors for a document's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const counts = new Map<string, number>();
  for (const match of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = match[1]
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const seen = counts.get(base) ?? 0;
    counts.set(base, seen + 1);
    found.add(seen === 0 ? base : `${base}-${seen}`);
  }
  return found;
}

/** Link and image targets: [text](target) and ![alt](target). */
function targets(markdown: string): string[] {
  return [...prose(markdown).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1]);
}

describe('documentation links', () => {
  for (const document of DOCUMENTS) {
    it(`${document}: relative links resolve inside the repository`, () => {
      const text = readFileSync(join(ROOT, document), 'utf8');
      expect(text).not.toMatch(/\.\.\/shared|\/work\//);
      const problems: string[] = [];
      for (const target of targets(text)) {
        if (/^[a-z]+:/.test(target)) continue; // http(s), mailto: not checked here
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? join(ROOT, document) : join(ROOT, dirname(document), decodeURIComponent(path));
        if (relative(ROOT, file).startsWith('..')) problems.push(`${target}: outside the repository`);
        else if (!existsSync(file)) problems.push(`${target}: no such file`);
        else if (anchor !== undefined && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) problems.push(`${target}: no such heading`);
      }
      expect(problems).toEqual([]);
    });
  }

  it('finds the links it checks', () => {
    // Guards the regexes: the README links its details, protocol.md its own headings.
    expect(targets(readFileSync(join(ROOT, 'README.md'), 'utf8'))).toContain('docs/protocol.md');
    expect(anchors(readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8'))).toContain('reconnect-and-resume-v2');
  });
});

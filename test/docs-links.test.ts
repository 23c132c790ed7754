/**
 * Every relative link in the README, the changelog, docs/ and bench/RESULTS.md resolves: the file
 * exists, and an anchor names a heading of the page it points to (GitHub's heading ids). Links in
 * code blocks and code spans are not links; http(s) links are not fetched. No server.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

function markdownFiles(): string[] {
  const files = ['README.md', 'CHANGELOG.md', 'bench/RESULTS.md'].filter((f) => existsSync(path.join(ROOT, f)));
  for (const f of readdirSync(path.join(ROOT, 'docs'))) if (f.endsWith('.md')) files.push(`docs/${f}`);
  return files;
}

/** The page's text outside fenced code blocks, line by line (line numbers kept for messages). */
function proseLines(text: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fence: string | null = null;
  text.split('\n').forEach((raw, i) => {
    const marker = /^\s*(```+|~~~+)/.exec(raw)?.[1];
    if (marker && (fence === null || marker.startsWith(fence))) {
      fence = fence === null ? marker : null;
      return;
    }
    if (fence === null) lines.push({ line: i + 1, text: raw.replace(/`[^`]*`/g, '') });
  });
  return lines;
}

/** GitHub's id for a heading: the rendered text lower-cased, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  const rendered = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*_]/g, '');
  return rendered
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .replace(/\s/g, '-');
}

const anchorCache = new Map<string, Set<string>>();

function anchorsOf(file: string): Set<string> {
  const cached = anchorCache.get(file);
  if (cached) return cached;
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(readFileSync(file, 'utf8'))) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  anchorCache.set(file, anchors);
  return anchors;
}

function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  const abs = path.join(ROOT, file);
  for (const { line, text } of proseLines(readFileSync(abs, 'utf8'))) {
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [where = '', anchor] = target.split('#', 2);
      const resolved = where === '' ? abs : path.resolve(path.dirname(abs), decodeURIComponent(where));
      if (!resolved.startsWith(ROOT + path.sep) && resolved !== ROOT) problems.push(`${file}:${line}: ${target} leaves the repository`);
      else if (!existsSync(resolved)) problems.push(`${file}:${line}: ${target}: no such file`);
      else if (anchor !== undefined && resolved.endsWith('.md') && statSync(resolved).isFile() && !anchorsOf(resolved).has(anchor)) {
        problems.push(`${file}:${line}: ${target}: no heading #${anchor} in ${path.relative(ROOT, resolved)}`);
      }
    }
  }
  return problems;
}

describe('documentation links', () => {
  test('the pages exist', () => {
    expect(markdownFiles()).toEqual(expect.arrayContaining(['README.md', 'docs/security.md']));
  });

  test.each(markdownFiles())('every relative link in %s resolves', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });

  test('heading ids follow GitHub', () => {
    expect(slug('Budgets, prices and the loop breaker')).toBe('budgets-prices-and-the-loop-breaker');
    expect(slug('Delegation: agents that hand work to agents')).toBe('delegation-agents-that-hand-work-to-agents');
    expect(slug('Unreleased — 0.2.0')).toBe('unreleased--020');
    expect(slug('`warden worker` settings')).toBe('warden-worker-settings');
  });
});

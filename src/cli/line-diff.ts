/**
 * A unified diff of two texts, line by line, as `diff -u` prints it. No diff library is among
 * Warden's dependencies, and policies are a few hundred lines at most: the plain longest common
 * subsequence table is fast enough and easy to trust.
 */
export function unifiedDiff(from: string, to: string, labels: { from: string; to: string }, context = 3): string[] {
  const a = splitLines(from);
  const b = splitLines(to);
  const ops = lineOps(a, b);
  if (ops.every((op) => op.kind === ' ')) return [];

  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  // Group changes with `context` unchanged lines around them; changes closer than twice that share a hunk.
  let i = 0;
  while (i < ops.length) {
    while (i < ops.length && ops[i]?.kind === ' ') i++;
    if (i >= ops.length) break;
    const start = Math.max(0, i - context);
    let end = i;
    for (let j = i; j < ops.length; j++) {
      if (ops[j]?.kind !== ' ') end = j;
      else if (j - end > 2 * context) break;
    }
    const stop = Math.min(ops.length, end + context + 1);
    const hunk = ops.slice(start, stop);
    const first = ops[start];
    const fromStart = (first?.aLine ?? 0) + 1;
    const toStart = (first?.bLine ?? 0) + 1;
    const fromCount = hunk.filter((op) => op.kind !== '+').length;
    const toCount = hunk.filter((op) => op.kind !== '-').length;
    out.push(`@@ -${fromCount === 0 ? fromStart - 1 : fromStart},${fromCount} +${toCount === 0 ? toStart - 1 : toStart},${toCount} @@`);
    for (const op of hunk) out.push(`${op.kind}${op.text}`);
    i = stop;
  }
  return out;
}

interface LineOp {
  kind: ' ' | '-' | '+';
  text: string;
  /** Index of this line (or of the next line) in each text. */
  aLine: number;
  bLine: number;
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function lineOps(a: readonly string[], b: readonly string[]): LineOp[] {
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      const row = lcs[i] as number[];
      row[j] = a[i] === b[j] ? (lcs[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(lcs[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const ops: LineOp[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: ' ', text: a[i] ?? '', aLine: i++, bLine: j++ });
    } else if (i < a.length && (j >= b.length || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      // Removed lines before added ones, as diff -u prints a changed line.
      ops.push({ kind: '-', text: a[i] ?? '', aLine: i++, bLine: j });
    } else {
      ops.push({ kind: '+', text: b[j] ?? '', aLine: i, bLine: j++ });
    }
  }
  return ops;
}

import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';

/** A place in a policy's text, 1-based like editors and compilers print it. */
export interface SourcePosition {
  line: number;
  column: number;
}

type Range = readonly [number, number, number];

function rangeOf(node: unknown): Range | undefined {
  const range = (node as { range?: Range | null } | null)?.range;
  return range ?? undefined;
}

function keyName(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' || typeof key === 'number' ? String(key) : undefined;
}

/** What a path leads to: the node and, when it is a map entry, the pair (for pointing at the key). */
interface Found {
  node: unknown;
  pair?: Pair;
  /** The whole path resolved; otherwise `node` is the nearest ancestor that exists. */
  complete: boolean;
}

/**
 * Maps paths inside a parsed policy (zod issue paths, `rules[2].when`) back to line and column
 * of its YAML or JSON text. Use it to say where a problem is; it never changes what is valid.
 */
export class PolicySourceMap {
  /** The parsed document: what `parsePolicyText` validates, so positions and values agree. */
  readonly doc: Document.Parsed;
  private readonly lines = new LineCounter();

  /** Parses `text` (YAML, or JSON, which is YAML too) keeping every node's position. */
  constructor(private readonly text: string) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: true });
  }

  /** Line and column of a character offset in the text. */
  positionAt(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  private find(path: readonly PropertyKey[]): Found {
    let node: unknown = this.doc.contents;
    let pair: Pair | undefined;
    for (const segment of path) {
      if (isMap(node)) {
        const next = node.items.find((item) => keyName(item.key) === String(segment));
        if (!next) return { node, pair, complete: false };
        pair = next;
        node = next.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const next = node.items[segment];
        if (next === undefined) return { node, pair, complete: false };
        pair = undefined;
        node = next;
      } else {
        return { node, pair, complete: false };
      }
    }
    return { node, pair, complete: true };
  }

  /**
   * Where the node at `path` starts: its value, or its key with `at: 'key'` (for "this field
   * should not be here"). A path that does not exist (a missing field) gives its nearest parent.
   */
  positionOf(path: readonly PropertyKey[], at: 'value' | 'key' = 'value'): SourcePosition | undefined {
    const found = this.find(path);
    const key = found.complete ? rangeOf(found.pair?.key) : undefined;
    const value = rangeOf(found.node);
    // An empty value (`lookup_order:` with nothing after it) has a zero-width range after the colon; its key is the better place.
    const emptyValue = value !== undefined && value[0] === value[1];
    const range = at === 'key' || emptyValue || value === undefined ? (key ?? value) : value;
    return range ? this.positionAt(range[0]) : undefined;
  }

  /**
   * Where character `offset` of the string at `path` (a CEL condition) is in the text. Quoting,
   * escapes and block scalars (`|`, `>`) make the two differ, so the string's characters are
   * matched against the source one by one.
   */
  positionInString(path: readonly PropertyKey[], offset: number): SourcePosition | undefined {
    const found = this.find(path);
    const node = found.node as Node | null;
    if (!found.complete || !isScalar(node) || typeof node.value !== 'string') return this.positionOf(path);
    const range = rangeOf(node);
    if (!range) return undefined;
    const text = this.text;
    const value = node.value;
    let at = range[0];
    // Skip what precedes the first character: a quote, or a block scalar's header line.
    if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') at += 1;
    else if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') at = text.indexOf('\n', at) + 1 || at;
    const end = range[1];
    for (let i = 0; i < Math.min(offset, value.length); i++) {
      const want = value[i] ?? '';
      while (at < end && !sameChar(text[at] ?? '', want)) at++;
      at++;
    }
    // Past the last match, skip the indentation or escape that precedes the target character.
    const want = value[offset];
    if (want !== undefined) while (at < end && !sameChar(text[at] ?? '', want)) at++;
    return this.positionAt(Math.min(at, Math.max(end - 1, range[0])));
  }
}

// Folding turns line breaks into spaces and the other way round; any whitespace matches any.
function sameChar(source: string, value: string): boolean {
  return source === value || (/\s/.test(source) && /\s/.test(value));
}

import { celEnv, type parse, unparse, type CelEnv } from '@bufbuild/cel';
import { assignable, comparable, describeType, DYN, fromCelType, join, prim, type CelStaticType } from './cel-types';

type ParsedExpr = ReturnType<typeof parse>;
type Expr = ParsedExpr['expr'];
type Constant = Extract<Expr['exprKind'], { case: 'constExpr' }>['value'];
type Comprehension = Extract<Expr['exprKind'], { case: 'comprehensionExpr' }>['value'];

/**
 * What kind of mistake a problem is. `unknown-field` depends on which tool's arguments are in
 * scope: a rule for several tools may read a field only some of them have.
 */
export type CelProblemKind = 'undeclared' | 'unknown-field' | 'type' | 'function';

/** One thing wrong with a condition, at a character offset of its text. */
export interface CelProblem {
  kind: CelProblemKind;
  offset: number;
  message: string;
  /** What the message cannot say without naming a tool ("has orderId, amount, reason"). */
  detail?: string;
}

const TYPE_NAMES = new Set(['bool', 'int', 'uint', 'double', 'string', 'bytes', 'list', 'map', 'null_type', 'type', 'dyn', 'google.protobuf.Timestamp', 'google.protobuf.Duration']);

const OPERATORS: Record<string, string> = {
  '_+_': '+',
  '_-_': '-',
  '_*_': '*',
  '_/_': '/',
  '_%_': '%',
  '-_': 'unary -',
  '!_': '!',
  '_<_': '<',
  '_<=_': '<=',
  '_>_': '>',
  '_>=_': '>=',
  '_==_': '==',
  '_!=_': '!=',
  '@in': 'in',
  '_&&_': '&&',
  '_||_': '||',
};

const ORDERING = new Set(['_<_', '_<=_', '_>_', '_>=_']);
const ARITHMETIC = new Set(['_+_', '_-_', '_*_', '_/_', '_%_']);

// The same environment `CompiledPolicy` plans with: a function the checker accepts must exist there.
let defaultEnv: CelEnv | undefined;

/**
 * Type-checks one parsed CEL expression against declared variables, with the function overloads
 * of the CEL library itself, and collects every problem instead of stopping at the first.
 *
 * @bufbuild/cel 0.6 ships a checker that handles only constants and identifiers (and does not
 * export it), so this walks the parsed AST. It reports only what is certain to fail or never
 * match at run time; where a type is unknown (`dyn`) it says nothing.
 */
export function checkCel(parsed: ParsedExpr, variables: ReadonlyMap<string, CelStaticType>, env: CelEnv = (defaultEnv ??= celEnv())): { type: CelStaticType; problems: CelProblem[] } {
  const checker = new Checker(parsed, variables, env);
  const type = checker.check(parsed.expr, []);
  return { type, problems: checker.problems };
}

type Scope = readonly ReadonlyMap<string, CelStaticType>[];

class Checker {
  readonly problems: CelProblem[] = [];
  private readonly positions: Record<string, number>;

  constructor(
    private readonly parsed: ParsedExpr,
    private readonly variables: ReadonlyMap<string, CelStaticType>,
    private readonly env: CelEnv,
  ) {
    this.positions = (parsed.sourceInfo?.positions ?? {});
  }

  private offsetOf(expr: Expr): number {
    return this.positions[String(expr.id)] ?? 0;
  }

  /** Where a subexpression starts in the text: its leftmost node (an operator's own position is the operator). */
  private startOf(expr: Expr): number {
    let min = this.offsetOf(expr);
    const visit = (e: Expr | undefined) => {
      if (!e) return;
      min = Math.min(min, this.offsetOf(e));
      const k = e.exprKind;
      if (k.case === 'selectExpr') visit(k.value.operand);
      else if (k.case === 'callExpr') {
        visit(k.value.target);
        k.value.args.forEach(visit);
      } else if (k.case === 'listExpr') k.value.elements.forEach(visit);
      else if (k.case === 'comprehensionExpr') visit(k.value.iterRange);
    };
    visit(expr);
    return min;
  }

  private text(expr: Expr): string {
    try {
      return unparse({ ...this.parsed, expr });
    } catch {
      return 'this expression';
    }
  }

  private report(kind: CelProblemKind, offset: number, message: string, detail?: string): void {
    this.problems.push(detail === undefined ? { kind, offset, message } : { kind, offset, message, detail });
  }

  check(expr: Expr, scope: Scope): CelStaticType {
    const k = expr.exprKind;
    switch (k.case) {
      case 'constExpr':
        return this.constant(k.value.constantKind);
      case 'identExpr':
        return this.ident(expr, k.value.name, scope);
      case 'selectExpr': {
        const operand = k.value.operand;
        if (!operand) return DYN;
        // A select's position is its dot; the field name follows it. `has(a.b)` is positioned at
        // `has`, and the select written inside it is kept among the macro calls.
        const written = k.value.testOnly ? this.parsed.sourceInfo?.macroCalls[String(expr.id)]?.exprKind : undefined;
        const dot = written?.case === 'callExpr' && written.value.args[0] ? this.offsetOf(written.value.args[0]) : this.offsetOf(expr);
        const field = this.field(dot + 1, operand, k.value.field, this.check(operand, scope), k.value.testOnly);
        return k.value.testOnly ? prim('bool') : field;
      }
      case 'callExpr':
        return this.call(expr, k.value.function, k.value.target, k.value.args, scope);
      case 'listExpr': {
        const types = k.value.elements.map((e) => this.check(e, scope));
        const [first, ...rest] = types;
        return { kind: 'list', elem: first ? rest.reduce(join, first) : DYN };
      }
      case 'structExpr':
        for (const entry of k.value.entries) {
          if (entry.keyKind.case === 'mapKey') this.check(entry.keyKind.value, scope);
          if (entry.value) this.check(entry.value, scope);
        }
        return k.value.messageName ? DYN : { kind: 'map', value: DYN };
      case 'comprehensionExpr':
        return this.comprehension(k.value, scope);
      default:
        return DYN;
    }
  }

  private constant(c: Constant['constantKind']): CelStaticType {
    switch (c.case) {
      case 'boolValue':
        return prim('bool');
      case 'int64Value':
        return prim('int');
      case 'uint64Value':
        return prim('uint');
      case 'doubleValue':
        return prim('double');
      case 'stringValue':
        return prim('string', [c.value]);
      case 'bytesValue':
        return prim('bytes');
      case 'nullValue':
        return prim('null_type');
      default:
        return DYN;
    }
  }

  private ident(expr: Expr, name: string, scope: Scope): CelStaticType {
    for (let i = scope.length - 1; i >= 0; i--) {
      const found = scope[i]?.get(name);
      if (found) return found;
    }
    const declared = this.variables.get(name);
    if (declared) return declared;
    if (TYPE_NAMES.has(name)) return prim('type');
    this.report('undeclared', this.offsetOf(expr), `unknown name "${name}" (a condition can read ${[...this.variables.keys()].join(', ')})`);
    return DYN;
  }

  /** The type of `operand.field`; `testOnly` is `has(operand.field)`. */
  private field(at: number, operand: Expr, name: string, type: CelStaticType, testOnly: boolean): CelStaticType {
    switch (type.kind) {
      case 'dyn':
        return DYN;
      case 'map':
        return type.value;
      case 'record': {
        const field = type.fields.get(name);
        if (field) return field;
        if (type.rest) return type.rest;
        const known = [...type.fields.keys()];
        const what = `${this.text(operand)} has no field "${name}"`;
        const detail = known.length > 0 ? `has ${known.join(', ')}` : 'has no fields';
        this.report('unknown-field', at, testOnly ? `has(${this.text(operand)}.${name}) is always false: ${what}` : `${what}: reading it fails at run time`, detail);
        return DYN;
      }
      default:
        this.report('type', at, `${this.text(operand)} is ${describeType(type)}, which has no field "${name}"`);
        return DYN;
    }
  }

  private call(expr: Expr, fn: string, target: Expr | undefined, argExprs: readonly Expr[], scope: Scope): CelStaticType {
    const targetType = target ? this.check(target, scope) : undefined;
    const args = argExprs.map((a) => this.check(a, scope));
    const [a, b, c] = args;
    const [ae, be] = argExprs;

    if (fn === '_&&_' || fn === '_||_' || fn === '@not_strictly_false') {
      argExprs.forEach((e, i) => this.expectBool(e, args[i] ?? DYN, `an operand of ${OPERATORS[fn] ?? fn}`));
      return prim('bool');
    }
    if (fn === '_?_:_') {
      if (ae && a) this.expectBool(ae, a, 'the condition of ?:');
      return b && c ? join(b, c) : DYN;
    }
    if (fn === '_[_]' && a && b && ae && be) return this.index(expr, ae, a, be, b);
    if ((fn === '_==_' || fn === '_!=_') && a && b && ae && be) {
      this.equality(expr, fn, ae, a, be, b);
      return prim('bool');
    }
    if (fn === '@in' && a && b && ae && be && b.kind === 'list' && !comparable(a, b.elem)) {
      this.report('type', this.startOf(expr), `${this.text(expr)} looks for ${describeType(a)} in a list of ${plural(b.elem)}: it is never true`);
      return prim('bool');
    }

    const group = this.env.funcs.find(fn);
    if (!group) {
      // Internal names (`_[?_]`, `@…`) belong to syntax this checker does not model; leave them alone.
      // A method call's position is the dot before its name.
      if (/^[A-Za-z]/.test(fn)) this.report('function', this.offsetOf(expr) + (target ? 1 : 0), `unknown function "${fn}": the condition fails at run time`);
      return DYN;
    }
    const overloads = [...group].filter(
      (f) => (f.target === undefined) === (targetType === undefined) && f.arguments.length === args.length && (!f.target || !targetType || assignable(f.target, targetType)) && f.arguments.every((p, i) => assignable(p, args[i] ?? DYN)),
    );
    const [first, ...more] = overloads.map((f) => fromCelType(f.result));
    if (first) return more.reduce(join, first);

    const shown = args.map(describeType);
    const where = this.startOf(expr);
    const op = OPERATORS[fn];
    if (op && ORDERING.has(fn) && a && b) {
      this.report('type', where, `${this.text(expr)} compares ${describeType(a)} with ${describeType(b)}: it fails at run time and the rule denies`);
    } else if (op && ARITHMETIC.has(fn) && a && b && isNumber(a) && isNumber(b)) {
      const literal = argExprs.map(intLiteral).find((v) => v !== undefined);
      // CEL has % for ints only, so there the double side has to become an int.
      const fix = fn === '_%_' ? 'convert the number with int()' : literal === undefined ? 'convert one side with int() or double()' : `write ${literal}.0`;
      this.report('type', where, `${this.text(expr)} mixes ${describeType(a)} and ${describeType(b)}, which CEL arithmetic does not do; numbers from JSON are doubles, so ${fix}`);
    } else if (op) {
      this.report('type', where, `${this.text(expr)}: ${op} does not apply to ${shown.join(' and ')}; it fails at run time`);
    } else {
      const of = targetType ? ` of ${describeType(targetType)}` : '';
      this.report('type', where, `${this.text(expr)}: ${fn}()${of} does not take ${shown.join(', ') || 'no arguments'}; it fails at run time`);
    }
    return DYN;
  }

  private expectBool(expr: Expr, type: CelStaticType, role: string): void {
    if (type.kind === 'dyn' || (type.kind === 'prim' && type.name === 'bool')) return;
    this.report('type', this.startOf(expr), `${role}, ${this.text(expr)}, is ${describeType(type)}, not a bool`);
  }

  private equality(expr: Expr, fn: string, ae: Expr, a: CelStaticType, be: Expr, b: CelStaticType): void {
    const never = fn === '_==_' ? 'never true' : 'always true';
    if (!comparable(a, b)) {
      this.report('type', this.startOf(expr), `${this.text(expr)} compares ${describeType(a)} with ${describeType(b)}: it is ${never}`);
      return;
    }
    // `tool.risk == "hgh"`: a literal outside the values the other side can take.
    for (const [side, other] of [
      [a, be],
      [b, ae],
    ] as const) {
      const literal = stringLiteral(other);
      if (literal === undefined || side.kind !== 'prim' || !side.values || side.values.includes(literal)) continue;
      this.report('type', this.startOf(expr), `${this.text(expr)} is ${never}: the value is one of ${side.values.map((v) => JSON.stringify(v)).join(', ')}`);
      return;
    }
  }

  private index(expr: Expr, operand: Expr, type: CelStaticType, keyExpr: Expr, key: CelStaticType): CelStaticType {
    switch (type.kind) {
      case 'dyn':
        return DYN;
      case 'list':
        return type.elem;
      case 'map':
        return type.value;
      case 'record': {
        const literal = stringLiteral(keyExpr);
        if (literal === undefined) return key.kind === 'prim' && key.name !== 'string' ? this.badIndex(expr, operand, type, key) : DYN;
        return this.field(this.offsetOf(keyExpr), operand, literal, type, false);
      }
      default:
        return this.badIndex(expr, operand, type, key);
    }
  }

  private badIndex(expr: Expr, operand: Expr, type: CelStaticType, key: CelStaticType): CelStaticType {
    this.report('type', this.startOf(expr), `${this.text(operand)} is ${describeType(type)} and cannot be indexed with ${describeType(key)}`);
    return DYN;
  }

  private comprehension(c: Comprehension, scope: Scope): CelStaticType {
    const range = c.iterRange ? this.check(c.iterRange, scope) : DYN;
    let elem: CelStaticType = DYN;
    if (range.kind === 'list') elem = range.elem;
    else if (range.kind === 'map' || range.kind === 'record') elem = prim('string');
    else if (range.kind !== 'dyn' && c.iterRange) this.report('type', this.startOf(c.iterRange), `${this.text(c.iterRange)} is ${describeType(range)}, which cannot be iterated`);
    const init = c.accuInit ? this.check(c.accuInit, scope) : DYN;
    // map() and filter() grow a list from `[]`: its element type is whatever the step adds.
    const accu = init.kind === 'list' ? { kind: 'list' as const, elem: DYN } : init;
    const inner = new Map<string, CelStaticType>([[c.accuVar, accu]]);
    inner.set(c.iterVar, elem);
    if (c.iterVar2) inner.set(c.iterVar2, DYN);
    const loopScope = [...scope, inner];
    if (c.loopCondition) this.check(c.loopCondition, loopScope);
    if (c.loopStep) this.check(c.loopStep, loopScope);
    return c.result ? this.check(c.result, [...scope, new Map([[c.accuVar, accu]])]) : DYN;
  }
}

function stringLiteral(expr: Expr): string | undefined {
  const k = expr.exprKind;
  return k.case === 'constExpr' && k.value.constantKind.case === 'stringValue' ? k.value.constantKind.value : undefined;
}

function intLiteral(expr: Expr): string | undefined {
  const k = expr.exprKind;
  return k.case === 'constExpr' && k.value.constantKind.case === 'int64Value' ? String(k.value.constantKind.value) : undefined;
}

function isNumber(t: CelStaticType): boolean {
  return t.kind === 'prim' && (t.name === 'int' || t.name === 'uint' || t.name === 'double');
}

function plural(t: CelStaticType): string {
  const d = describeType(t).replace(/^(a|an) /, '');
  return d === 'any value' ? 'values' : d === 'bytes' ? 'bytes' : `${d}s`;
}

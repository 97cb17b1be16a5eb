// Renders a parsed @huggingface/jinja template under a budget, with the globals transformers gives
// its chat templates, and a few fixes that bring the output closer to Python's jinja2.
//
// Why a budget: a chat template comes from the model repo, so it is untrusted code that runs on the
// thread that must answer aborts. Without limits `{% for i in range(10**9) %}` makes V8 die with
// "Fatal JavaScript invalid size error" (not catchable), nested loops run for hours, and a template
// can write tens of millions of characters. Rendering here is synchronous and always ends: it
// throws TemplateBudgetError as soon as one limit is passed.
//
// What is counted (defaults in DEFAULT_RENDER_BUDGET):
//   maxSteps        every AST node evaluated (a real template, a short chat with tools: ~700)
//   maxMillis       wall time, checked every 1024 steps
//   maxOutputChars  the longest string any expression may produce, the output included; text written
//                   by output statements, counted each time, may reach 4× this
//   maxRange        range() length (jinja2's sandbox refuses ranges over 100000 too)
//   maxItems        the longest list any expression may produce
//   filter arguments: an integer argument above maxOutputChars (indent(10**9)) is refused before
//   the filter runs
//
// Fixes over @huggingface/jinja, each what jinja2 / transformers do:
//   {{ value }}, `~` and `| string` print True / False / None and Python reprs of lists and dicts
//   ('a' + dict) concatenates the dict's JSON (jinja2 raises a TypeError; templates written for
//   OpenAI-style string `arguments`, such as DeepSeek's, then print JSON instead of "[object Map]")
//   strftime_now: English names whatever the locale, the full strftime code set (./strftime.ts)
//   none | selectattr / rejectattr / select / reject / map give an empty list (jinja2 skips a falsy input)
//   an undefined value | trim / upper / lower / string ... gives '', | length gives 0
//   `for a, b in [("x", "X"), ...]` unpacks tuples; `for x in undefined` loops zero times
//   `"text"|safe + s` HTML-escapes s, as markupsafe's Markup does (functionary's template relies on it)
//   'ab' * 3 and [1] * 3 repeat, as in Python (the library has no such operator)

import { Environment, Interpreter, type Template } from '@huggingface/jinja';
import { strftime } from './strftime';

export interface RenderBudget {
  maxSteps?: number;
  maxMillis?: number;
  maxOutputChars?: number;
  maxRange?: number;
  maxItems?: number;
}

// The real templates of ../shared/realworld take at most ~700 steps and 30 ms for a short chat
// with tools (tools/templates fixtures); a long chat with many tools stays far below a million.
export const DEFAULT_RENDER_BUDGET: Required<RenderBudget> = {
  maxSteps: 1_000_000,
  maxMillis: 2_000,
  maxOutputChars: 4 * 1024 * 1024,
  maxRange: 100_000,
  maxItems: 1_000_000,
};

/** Rendering passed one of the limits of a RenderBudget; `limit` names it. */
export class TemplateBudgetError extends Error {
  constructor(
    readonly limit: keyof RenderBudget,
    message: string,
  ) {
    super(message);
    this.name = 'TemplateBudgetError';
  }
}

// The runtime values of @huggingface/jinja, as far as this file looks at them.
interface RuntimeValue {
  type: string;
  value: unknown;
  toString(): string;
}
interface AstNode {
  type: string;
  [field: string]: unknown;
}
interface InterpreterInternals {
  global: Environment;
  run(program: unknown): RuntimeValue;
  evaluate(node: AstNode | undefined, env: Environment): RuntimeValue;
  evaluateBlock(statements: AstNode[], env: Environment): RuntimeValue;
  evaluateBinaryExpression(node: AstNode, env: Environment): RuntimeValue;
}
const BaseInterpreter = Interpreter as unknown as new (env: Environment) => InterpreterInternals;

// A node holding an already evaluated value, so a node's operands can be looked at (and budgeted)
// before the library's own code for that node runs, without evaluating them twice.
const PRECOMPUTED = '__webattnPrecomputed';
const precomputed = (value: RuntimeValue): AstNode => ({ type: PRECOMPUTED, value });

// Statements whose output is made of their children's output, already counted when the children ran.
const BLOCK_STATEMENTS = new Set(['For', 'If', 'Macro', 'CallStatement', 'FilterStatement', 'Set', 'Comment']);

// Value constructors of the library, reached through the values it makes (they are not exported).
const probe = new Environment();
const STRING_VALUE = probe.set('s', '').constructor as new (s: string) => RuntimeValue;
const ARRAY_VALUE = probe.set('a', []).constructor as new (items: RuntimeValue[]) => RuntimeValue;

/** A string jinja2 would hold as markupsafe.Markup (made by `|safe`): what is joined to it gets HTML-escaped. */
class MarkupValue extends STRING_VALUE {
  readonly markup = true;
}
const isMarkup = (v: RuntimeValue): boolean => v instanceof MarkupValue;
/** markupsafe.escape: & < > " ' as &amp; &lt; &gt; &#34; &#39;. */
const htmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;');

// Filters jinja2 runs on an empty sequence when their input is None or undefined.
const SEQUENCE_FILTERS = new Set(['selectattr', 'rejectattr', 'select', 'reject', 'map']);
// Filters whose undefined input jinja2 reads as ''.
const STRING_FILTERS = new Set(['trim', 'upper', 'lower', 'title', 'capitalize', 'string', 'length', 'join']);
const LITERALS = new Set(['IntegerLiteral', 'FloatLiteral', 'StringLiteral']);

/** Python's repr of a string: single quotes unless it holds one and no double quote. */
function pyReprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ' || ch === '\x7f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return quote + out + quote;
}

/** Python's repr of a float: 3.0, 0.1, 1e-05, 1e+16. */
function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = x.toExponential().split('e');
  const e = Number(exp);
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const s = String(x);
  return s.includes('.') ? s : `${s}.0`;
}

/** What Python's str() gives for a value: the string itself at the top, repr inside containers. */
function pyStr(v: RuntimeValue, nested = false): string {
  switch (v.type) {
    case 'StringValue':
      return nested ? pyReprString(v.value as string) : (v.value as string);
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
      return 'None';
    case 'UndefinedValue':
      return '';
    case 'IntegerValue':
      return String(v.value);
    case 'FloatValue':
      return pyFloat(v.value as number);
    case 'TupleValue': {
      const items = (v.value as RuntimeValue[]).map((x) => pyStr(x, true));
      return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
    }
    case 'ArrayValue':
      return `[${(v.value as RuntimeValue[]).map((x) => pyStr(x, true)).join(', ')}]`;
    case 'ObjectValue': {
      const map = v.value as Map<string, RuntimeValue>;
      const entries = [...map].map(([k, x]) => `${pyReprString(k)}: ${pyStr(x, true)}`);
      return `{${entries.join(', ')}}`;
    }
    default:
      return v.toString();
  }
}

class BudgetedInterpreter extends BaseInterpreter {
  private steps = 0;
  private written = 0;
  private readonly deadline: number;

  constructor(
    env: Environment,
    private readonly budget: Required<RenderBudget>,
  ) {
    super(env);
    this.deadline = Date.now() + budget.maxMillis;
  }

  /** Counts `n` steps of work; past the step or time budget it throws. */
  private step(n = 1) {
    const b = this.budget;
    const before = this.steps;
    this.steps += n;
    if (this.steps > b.maxSteps) {
      throw new TemplateBudgetError('maxSteps', `rendering took more than ${b.maxSteps} steps (budget.maxSteps)`);
    }
    if ((before >>> 10 !== this.steps >>> 10 || n > 1) && Date.now() > this.deadline) {
      throw new TemplateBudgetError('maxMillis', `rendering took more than ${b.maxMillis} ms (budget.maxMillis)`);
    }
  }

  override evaluate(node: AstNode | undefined, env: Environment): RuntimeValue {
    if (node?.type === PRECOMPUTED) return node.value as RuntimeValue;
    this.step();
    let value: RuntimeValue;
    if (node?.type === 'FilterExpression') value = this.evaluateFilter(node, env);
    else if (node?.type === 'For') value = super.evaluate(this.forWithUnpackableItems(node, env), env);
    else value = super.evaluate(node, env);
    this.checkSize(value);
    return value;
  }

  override evaluateBinaryExpression(node: AstNode, env: Environment): RuntimeValue {
    const op = (node.operator as { value: string }).value;
    if (op === 'and' || op === 'or') return super.evaluateBinaryExpression(node, env);
    const left = this.evaluate(node.left as AstNode, env);
    const right = this.evaluate(node.right as AstNode, env);
    const container = (v: RuntimeValue) => v.type === 'ObjectValue' || v.type === 'ArrayValue';
    const isString = (v: RuntimeValue) => v.type === 'StringValue';
    const joinsMarkup = (op === '+' && isString(left) && isString(right)) || op === '~';
    if (joinsMarkup && (isMarkup(left) || isMarkup(right))) {
      const part = (v: RuntimeValue) => (isMarkup(v) ? (v.value as string) : htmlEscape(pyStr(v)));
      return this.string(part(left) + part(right), true);
    }
    if (op === '~') return this.string(pyStr(left) + pyStr(right));
    if (op === '*' && (left.type === 'IntegerValue' || right.type === 'IntegerValue')) {
      const [seq, times] = left.type === 'IntegerValue' ? [right, left.value as number] : [left, right.value as number];
      if (isString(seq) || seq.type === 'ArrayValue') return this.repeated(seq, times);
    }
    if (op === '+' && ((isString(left) && container(right)) || (container(left) && isString(right)))) {
      return this.string(left.toString() + right.toString()); // a dict's or list's toString is its JSON
    }
    return super.evaluateBinaryExpression({ ...node, left: precomputed(left), right: precomputed(right) }, env);
  }

  override evaluateBlock(statements: AstNode[], env: Environment): RuntimeValue {
    this.step(); // a loop body is a block: an empty one still costs a step per iteration
    let out = '';
    for (const statement of statements) {
      const v = this.evaluate(statement, env);
      const isBlock = BLOCK_STATEMENTS.has(statement.type);
      // Set, macro and comment statements give null for "no output"; an expression's None prints 'None'.
      if (v.type === 'UndefinedValue' || (v.type === 'NullValue' && isBlock)) continue;
      const text = isBlock ? (v.value as string) : pyStr(v);
      if (!isBlock) this.countWritten(text.length);
      out += text;
      if (out.length > this.budget.maxOutputChars) this.tooLong(out.length);
    }
    return this.string(out);
  }

  /** `operand | filter(args)`, with jinja2's reading of None / undefined inputs and the arguments budgeted. */
  private evaluateFilter(node: AstNode, env: Environment): RuntimeValue {
    let filter = node.filter as AstNode;
    const name = (filter.type === 'CallExpression' ? (filter.callee as AstNode).value : filter.value) as string;
    let operand = this.evaluate(node.operand as AstNode, env);
    const missing = operand.type === 'NullValue' || operand.type === 'UndefinedValue';
    if (missing && SEQUENCE_FILTERS.has(name)) operand = new ARRAY_VALUE([]);
    else if (operand.type === 'UndefinedValue' && STRING_FILTERS.has(name)) operand = this.string('');
    if (name === 'safe' && filter.type === 'Identifier') return this.string(pyStr(operand), true);
    // jinja2's `string` is str(): Python reprs inside containers (SmolLM3 prints its xml_tools dicts with it).
    if (name === 'string' && filter.type === 'Identifier')
      return isMarkup(operand) ? operand : this.string(pyStr(operand));
    if (filter.type === 'CallExpression') {
      filter = { ...filter, args: (filter.args as AstNode[]).map((a) => this.checkedArg(name, a, env)) };
    }
    return super.evaluate({ ...node, operand: precomputed(operand), filter }, env);
  }

  /**
   * A filter's argument, evaluated once; an integer past maxOutputChars (indent(10**9)) is refused.
   * Literals stay as they are: the library checks that selectattr's arguments are string literals.
   */
  private checkedArg(filterName: string, arg: AstNode, env: Environment): AstNode {
    const isKeyword = arg.type === 'KeywordArgumentExpression';
    const expr = (isKeyword ? arg.value : arg) as AstNode;
    if (!isKeyword && arg.type.endsWith('SpreadExpression')) return arg;
    const literal = LITERALS.has(expr.type);
    const value = literal ? ({ type: expr.type, value: expr.value } as RuntimeValue) : this.evaluate(expr, env);
    const isInteger = value.type === 'IntegerValue' || value.type === 'IntegerLiteral';
    const max = this.budget.maxOutputChars;
    if (isInteger && Math.abs(value.value as number) > max) {
      throw new TemplateBudgetError(
        'maxOutputChars',
        `${filterName}(${String(value.value)}) asks for more than ${max} characters (budget.maxOutputChars)`,
      );
    }
    if (literal) return arg;
    return isKeyword ? { ...arg, value: precomputed(value) } : precomputed(value);
  }

  /** A for loop whose tuple items unpack (`for a, b in [("x", "X")]`) and whose undefined iterable is empty. */
  private forWithUnpackableItems(node: AstNode, env: Environment): AstNode {
    const iterable = node.iterable as AstNode;
    if (iterable.type === 'SelectExpression') return node; // `for x in xs if test`: left to the library
    let items = this.evaluate(iterable, env);
    if (items.type === 'UndefinedValue') items = new ARRAY_VALUE([]);
    // The library walks every item once before the body runs (scopes, loop variables).
    if (items.type === 'ArrayValue') this.step((items.value as unknown[]).length);
    if ((node.loopvar as AstNode).type === 'TupleLiteral' && items.type === 'ArrayValue') {
      const list = items.value as RuntimeValue[];
      if (list.some((x) => x.type === 'TupleValue')) {
        const asList = (x: RuntimeValue) => (x.type === 'TupleValue' ? new ARRAY_VALUE(x.value as RuntimeValue[]) : x);
        items = new ARRAY_VALUE(list.map(asList));
      }
    }
    return { ...node, iterable: precomputed(items) };
  }

  /** `'ab' * 3` and `[1] * 3` as in Python, the size checked before it is made. */
  private repeated(seq: RuntimeValue, times: number): RuntimeValue {
    const n = Math.max(0, times);
    if (seq.type === 'StringValue') {
      const s = seq.value as string;
      if (s.length * n > this.budget.maxOutputChars) this.tooLong(s.length * n);
      return this.string(s.repeat(n));
    }
    const items = seq.value as RuntimeValue[];
    if (items.length * n > this.budget.maxItems) {
      const max = this.budget.maxItems;
      const why = `a list of ${items.length * n} items is more than ${max} (budget.maxItems)`;
      throw new TemplateBudgetError('maxItems', why);
    }
    this.step(items.length * n);
    return new ARRAY_VALUE(Array.from({ length: items.length * n }, (_, i) => items[i % items.length]));
  }

  private string(s: string, markup = false): RuntimeValue {
    if (s.length > this.budget.maxOutputChars) this.tooLong(s.length);
    return markup ? new MarkupValue(s) : new STRING_VALUE(s);
  }

  private countWritten(n: number) {
    this.written += n;
    const limit = 4 * this.budget.maxOutputChars;
    if (this.written > limit) {
      throw new TemplateBudgetError(
        'maxOutputChars',
        `rendering wrote more than ${limit} characters (4 × budget.maxOutputChars, nested output counted each time)`,
      );
    }
  }

  private tooLong(n: number): never {
    throw new TemplateBudgetError(
      'maxOutputChars',
      `rendering made a text of ${n} characters, more than ${this.budget.maxOutputChars} (budget.maxOutputChars)`,
    );
  }

  private checkSize(v: RuntimeValue) {
    if (v.type === 'StringValue' && (v.value as string).length > this.budget.maxOutputChars) {
      this.tooLong((v.value as string).length);
    }
    if ((v.type === 'ArrayValue' || v.type === 'TupleValue') && (v.value as unknown[]).length > this.budget.maxItems) {
      throw new TemplateBudgetError(
        'maxItems',
        `rendering made a list of ${(v.value as unknown[]).length} items, ` +
          `more than ${this.budget.maxItems} (budget.maxItems)`,
      );
    }
  }
}

/** range() as Python's, refusing lengths past maxRange before anything is allocated. */
function cappedRange(maxRange: number) {
  return (...args: unknown[]): number[] => {
    const ints = args.filter((a) => typeof a === 'number') as number[];
    if (ints.length !== args.length || ints.length < 1 || ints.length > 3 || !ints.every(Number.isInteger)) {
      throw new Error('range() takes one to three integers');
    }
    const [start, stop, step] = ints.length === 1 ? [0, ints[0], 1] : [ints[0], ints[1], ints[2] ?? 1];
    if (step === 0) throw new Error('range() step must not be zero');
    const length = Math.max(0, Math.ceil((stop - start) / step));
    if (length > maxRange) {
      const why = `range() of ${length} items is more than ${maxRange} (budget.maxRange)`;
      throw new TemplateBudgetError('maxRange', why);
    }
    return Array.from({ length }, (_, i) => start + i * step);
  };
}

export interface RenderOptions {
  budget?: RenderBudget;
  /** The clock strftime_now reads; default the current time. */
  now?: () => Date;
}

/** Renders a parsed template with `variables` under the budget. Errors are thrown as they are. */
export function renderTemplate(
  template: Template,
  variables: Record<string, unknown>,
  opts: RenderOptions = {},
): string {
  const budget = { ...DEFAULT_RENDER_BUDGET, ...opts.budget };
  const now = opts.now ?? (() => new Date());
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    raise_exception: (message: unknown) => {
      throw new Error(String(message));
    },
    range: cappedRange(budget.maxRange),
    strftime_now: (format: unknown) => strftime(now(), String(format)),
  };
  for (const [k, v] of Object.entries({ ...globals, ...variables })) env.set(k, v);
  const interpreter = new BudgetedInterpreter(env, budget);
  return interpreter.run(template.parsed).value as string;
}

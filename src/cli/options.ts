/**
 * What every `webattn` command shares: the Command shape main.ts lists, UsageError (bad usage or
 * malformed input: one line on stderr, exit code 2) and strict option parsers that name the option
 * and the values it takes. Nothing here touches the GPU.
 */
import { parseArgs } from 'node:util';

/** Bad usage or malformed input: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One `webattn <name>` command: its line in `webattn --help`, its own --help text, and what it does. */
export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** Strict option parsing; every problem is a UsageError naming the option. */
export function options<T extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>>(
  argv: string[],
  spec: T,
) {
  try {
    return parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]} (see --help)`);
  }
}

/** A positive integer option (digits only), or undefined; a UsageError naming the option otherwise. */
export function positiveIntegerOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^[1-9][0-9]*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} must be a positive integer, got '${text}'`);
  return n;
}

/** A non-negative number option, or undefined; a UsageError naming the option otherwise. */
export function numberOption(name: string, text: string | undefined, integer = false): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be a non-negative ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return n;
}

/** The values a numeric option takes: [min, max] (or (min, max] with minExclusive); max absent = no bound. */
export interface OptionRange {
  integer?: boolean;
  min: number;
  minExclusive?: boolean;
  max?: number;
  /** Said after the range, e.g. '0 = off'. */
  note?: string;
}

/**
 * A number option within `range`, or undefined when absent; otherwise a UsageError naming the
 * option and its range. Example: rangeOption('top-p', '5', { min: 0, minExclusive: true, max: 1 })
 * throws "--top-p must be a number in (0, 1], got '5'".
 */
export function rangeOption(name: string, text: string | undefined, range: OptionRange): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  const { integer = false, min, minExclusive = false, max } = range;
  const inside = (minExclusive ? n > min : n >= min) && (max === undefined || n <= max);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || !inside) {
    const bounds =
      max === undefined ? `${minExclusive ? '>' : '>='} ${min}` : `in ${minExclusive ? '(' : '['}${min}, ${max}]`;
    const note = range.note ? ` (${range.note})` : '';
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} ${bounds}${note}, got '${text}'`);
  }
  return n;
}

/** --weight-dtype of the model commands: f32, f16, or q8 / q4 (quantized on load); undefined when absent. */
export function weightDtypeOption(text: string | undefined): 'f32' | 'f16' | 'q8' | 'q4' | undefined {
  if (text === undefined || text === 'f16' || text === 'f32' || text === 'q8' || text === 'q4') return text;
  throw new UsageError(`--weight-dtype must be q4, q8, f16 or f32, got '${text}'`);
}

/** --kv-dtype of the model commands: f16, f32, or q8 / q4 (quantised on write); undefined when absent. */
export function dtypeOption(name: string, text: string | undefined): 'f16' | 'f32' | 'q8' | 'q4' | undefined {
  if (text === undefined || text === 'f16' || text === 'f32' || text === 'q8' || text === 'q4') return text;
  throw new UsageError(`--${name} must be f16, f32, q8 or q4, got '${text}'`);
}

import { describe, expect, it } from 'vitest';
import { rangeOption, UsageError } from '../../src/cli/options';

describe('rangeOption', () => {
  const topP = { min: 0, minExclusive: true, max: 1 };
  const seed = { integer: true, min: 0, max: 2 ** 32 - 1 };

  it('returns the number inside the range, undefined when the option is absent', () => {
    expect(rangeOption('top-p', undefined, topP)).toBeUndefined();
    expect(rangeOption('top-p', '1', topP)).toBe(1);
    expect(rangeOption('top-p', '0.25', topP)).toBe(0.25);
    expect(rangeOption('seed', '0', seed)).toBe(0);
    expect(rangeOption('seed', '4294967295', seed)).toBe(2 ** 32 - 1);
    expect(rangeOption('temperature', '0', { min: 0 })).toBe(0);
    expect(rangeOption('temperature', '1e3', { min: 0 })).toBe(1000);
  });

  it.each([
    ['top-p', '5', topP, "--top-p must be a number in (0, 1], got '5'"],
    ['top-p', '0', topP, "--top-p must be a number in (0, 1], got '0'"],
    ['top-p', '', topP, "--top-p must be a number in (0, 1], got ''"],
    ['min-p', '-0.5', { min: 0, max: 1, note: '0 = off' }, "--min-p must be a number in [0, 1] (0 = off), got '-0.5'"],
    ['repetition-penalty', '0', { min: 0, minExclusive: true }, "--repetition-penalty must be a number > 0, got '0'"],
    ['temperature', 'Infinity', { min: 0 }, "--temperature must be a number >= 0, got 'Infinity'"],
    ['seed', 'abc', seed, "--seed must be an integer in [0, 4294967295], got 'abc'"],
    ['seed', 'NaN', seed, "--seed must be an integer in [0, 4294967295], got 'NaN'"],
    ['seed', '4294967296', seed, "--seed must be an integer in [0, 4294967295], got '4294967296'"],
    ['seed', '1.5', seed, "--seed must be an integer in [0, 4294967295], got '1.5'"],
    ['max-new-tokens', '0', { integer: true, min: 1 }, "--max-new-tokens must be an integer >= 1, got '0'"],
  ])('--%s %j is a UsageError naming the option and its range', (name, text, range, message) => {
    expect(() => rangeOption(name, text, range)).toThrow(UsageError);
    expect(() => rangeOption(name, text, range)).toThrow(message);
  });
});

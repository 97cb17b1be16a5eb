/**
 * llama.cpp's tokenizer test vectors (../shared/realworld/tokenizer-test-vectors): `NAME.inp` holds
 * the strings, split by '\n__ggml_vocab_test__\n' (the last piece is empty); `NAME.out` the ids Hugging
 * Face's AutoTokenizer gives each with `add_special_tokens=False`, one line per string.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

export const REALWORLD = new URL('../../../shared/realworld/', import.meta.url).pathname;
export const VECTORS = `${REALWORLD}tokenizer-test-vectors/`;

/** The strings of `NAME.inp` with the ids of `NAME.out`, e.g. testVectors('ggml-vocab-phi-3.gguf'). */
export function testVectors(name: string): { text: string; ids: number[] }[] {
  const inputs = readFileSync(`${VECTORS}${name}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  expect(inputs.pop()).toBe('');
  const lines = readFileSync(`${VECTORS}${name}.out`, 'utf8').split('\n');
  return inputs.map((text, i) => ({
    text,
    ids: lines[i].trim() === '' ? [] : lines[i].trim().split(/\s+/).map(Number),
  }));
}

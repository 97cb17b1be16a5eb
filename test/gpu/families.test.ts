/**
 * The families of issue 18 on the GPU: a tiny random checkpoint per family in its exact config keys
 * and tensor names (test/helpers/familyModels.ts), written to disk and loaded through the real
 * loader (phi3's fused tensors split at load, MiniCPM3's muP folded in), against the float64
 * reference forward in prefill, decode (one token per step through the paged KV cache) and chunked
 * prefill. 13 tokens with pages of 4 and windows of 5: the window boundary crosses pages; LongRoPE's
 * original context is 8, so positions 8..12 use the long factors. On SwiftShader (no shader-f16)
 * one case runs, with f16 weights and KV: the packed-f16 path.
 */
import { describe, it } from 'vitest';
import { checkForwardModes } from './forwardCheck';
import { familyConfigs } from '../helpers/familyModels';
import { expectedShaderF16 } from './harness';

const T = 13;

function checkFamily(family: string, dtype: 'f32' | 'f16') {
  return checkForwardModes(familyConfigs[family], { family, dtype, tokens: T, chunk: 5, maxContext: 32 });
}

const swiftshader = expectedShaderF16() === false;

describe('issue-18 families on the GPU vs the float64 reference', () => {
  for (const family of ['gemma2', 'gemma3', 'phi3', 'phi35', 'smollm3', 'minicpm3']) {
    it.skipIf(swiftshader)(`${family} [f32 weights and KV]`, () => checkFamily(family, 'f32'));
  }
  it('gemma3 [f16 weights and KV]', () => checkFamily('gemma3', 'f16'));
});

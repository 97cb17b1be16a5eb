/**
 * The float64 reference forward for the families of issue 18: each addition is shown to matter
 * (switching it off changes the logits) and to be what it claims (an equivalent rewrite gives the
 * same logits): phi3's fused tensors are the unfused model's, MiniCPM3's muP folds into weights
 * exactly as the GPU loader folds it (loadScales), LongRoPE only changes positions past the
 * original context, the soft-caps bound what they cap.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig, type ModelSpec } from '../../src/model/config';
import { fusedSlices } from '../../src/model/expectedTensors';
import { loadScales } from '../../src/model/fusedWeights';
import { referenceForward } from '../../src/reference/transformer';
import { relL2 } from '../../src/reference/attention';
import { lookup, randomIds, randomWeights } from '../helpers/tinyModels';
import { familyConfigs } from '../helpers/familyModels';

const rows = (x: Float64Array, from: number, to: number, V: number) => x.subarray(from * V, to * V);
const T = 12;

describe('reference forward: issue-18 families', () => {
  it('gemma2: the attention soft-cap and the final soft-cap change the logits, which stay inside the cap', () => {
    const spec = parseConfig(familyConfigs.gemma2);
    const w = lookup(randomWeights(spec));
    const ids = randomIds(T, spec.vocabSize);
    const capped = referenceForward(spec, w, ids);
    expect(Math.max(...capped.map(Math.abs))).toBeLessThan(3);
    const noAttnCap: ModelSpec = { ...spec, attnLogitSoftcap: null };
    const noFinalCap: ModelSpec = { ...spec, finalLogitSoftcap: null };
    expect(relL2(referenceForward(noAttnCap, w, ids), capped)).toBeGreaterThan(1e-4);
    expect(relL2(referenceForward(noFinalCap, w, ids), capped)).toBeGreaterThan(1e-4);
    // Only layer 0 slides (window 5): rows before the window fills equal full attention.
    expect(spec.layers.map((l) => l.sliding)).toEqual([true, false]);
    const full = referenceForward({ ...spec, slidingWindow: null }, w, ids);
    const V = spec.vocabSize;
    expect(relL2(rows(full, 0, 5, V), rows(capped, 0, 5, V))).toBeLessThan(1e-12);
    expect(relL2(rows(full, 5, T, V), rows(capped, 5, T, V))).toBeGreaterThan(1e-6);
  });

  it('gemma3: the local layers rotate with rope_local_base_freq, the global one with rope_theta', () => {
    const spec = parseConfig(familyConfigs.gemma3);
    expect(spec.layers.map((l) => l.rope)).toEqual(['local', 'local', 'global']);
    const w = lookup(randomWeights(spec));
    const ids = randomIds(T, spec.vocabSize);
    const ref = referenceForward(spec, w, ids);
    const otherLocal = parseConfig({ ...familyConfigs.gemma3, rope_local_base_freq: 10000 });
    const otherGlobal = parseConfig({ ...familyConfigs.gemma3, rope_theta: 100 });
    expect(relL2(referenceForward(otherLocal, w, ids), ref)).toBeGreaterThan(1e-6);
    expect(relL2(referenceForward(otherGlobal, w, ids), ref)).toBeGreaterThan(1e-6);
    // All layers local at base 100 = the global RoPE at base 100 everywhere with the same windows.
    const allLocal: ModelSpec = { ...spec, layers: spec.layers.map((l) => ({ ...l, rope: 'local' })) };
    const allGlobal: ModelSpec = {
      ...spec,
      rope: spec.localRope!,
      layers: spec.layers.map((l) => ({ ...l, rope: 'global' })),
    };
    expect(relL2(referenceForward(allLocal, w, ids), referenceForward(allGlobal, w, ids))).toBe(0);
  });

  it('phi3: the fused qkv_proj / gate_up_proj model is the unfused model with their row slices', () => {
    const spec = parseConfig(familyConfigs.phi3);
    const fused = randomWeights(spec);
    const split = new Map(fused);
    for (const [name, s] of fusedSlices(spec)) {
      split.set(
        name,
        fused.get(s.source)!.slice(s.firstRow * spec.hiddenSize, (s.firstRow + s.rows) * spec.hiddenSize),
      );
    }
    const unfused: ModelSpec = { ...spec, fusedProjections: false };
    const ids = randomIds(T, spec.vocabSize);
    expect(relL2(referenceForward(unfused, lookup(split), ids), referenceForward(spec, lookup(fused), ids))).toBe(0);
  });

  it('phi3: partial rotary turns only the first rotaryDim values; LongRoPE changes only positions >= 8', () => {
    const spec = parseConfig(familyConfigs.phi3);
    expect(spec.rope.rotaryDim).toBe(4); // head_dim 8 x 0.5
    const w = lookup(randomWeights(spec));
    const ids = randomIds(T, spec.vocabSize);
    const ref = referenceForward(spec, w, ids);
    const fullRotary: ModelSpec = { ...spec, rope: { ...spec.rope, rotaryDim: 8 } };
    const s = spec.rope.scaling;
    if (s.type !== 'longrope') throw new Error('phi3 config must parse as longrope');
    // (the 8-wide variant needs 4 factors)
    fullRotary.rope = {
      ...fullRotary.rope,
      scaling: { ...s, shortFactor: [...s.shortFactor, 1, 1], longFactor: [...s.longFactor, 1, 1] },
    };
    expect(relL2(referenceForward(fullRotary, w, ids), ref)).toBeGreaterThan(1e-6);
    const shortOnly: ModelSpec = { ...spec, rope: { ...spec.rope, scaling: { ...s, longFactor: s.shortFactor } } };
    const other = referenceForward(shortOnly, w, ids);
    const V = spec.vocabSize;
    expect(relL2(rows(other, 0, 8, V), rows(ref, 0, 8, V))).toBeLessThan(1e-12);
    expect(relL2(rows(other, 8, T, V), rows(ref, 8, T, V))).toBeGreaterThan(1e-6);
  });

  it('smollm3: the NoPE layers apply no RoPE (rope_theta only reaches layers 0 and 2)', () => {
    const spec = parseConfig(familyConfigs.smollm3);
    expect(spec.layers.map((l) => l.rope)).toEqual(['global', 'none', 'global', 'none']);
    const w = lookup(randomWeights(spec));
    const ids = randomIds(T, spec.vocabSize);
    const ref = referenceForward(spec, w, ids);
    const allRope: ModelSpec = { ...spec, layers: spec.layers.map((l) => ({ ...l, rope: 'global' })) };
    expect(relL2(referenceForward(allRope, w, ids), ref)).toBeGreaterThan(1e-6);
    // Without positions, one layer's attention is a function of the set of keys: the last row of
    // [a, b, c] equals that of [b, a, c]. With RoPE (layer 0 of the real spec) it does not.
    const V = spec.vocabSize;
    const one = (rope: 'none' | 'global'): ModelSpec => ({ ...spec, numLayers: 1, layers: [{ sliding: false, rope }] });
    const last = (s1: ModelSpec, ids3: number[]) => rows(referenceForward(s1, w, ids3), 2, 3, V);
    expect(relL2(last(one('none'), [3, 7, 11]), last(one('none'), [7, 3, 11]))).toBeLessThan(1e-12);
    expect(relL2(last(one('global'), [3, 7, 11]), last(one('global'), [7, 3, 11]))).toBeGreaterThan(1e-6);
  });

  it('minicpm3: muP (scale_emb, scale_depth, dim_model_base) folds into weights as the loader does', () => {
    const spec = parseConfig(familyConfigs.minicpm3);
    expect(spec.family).toBe('minicpm3'); // from architectures
    expect(spec.attention).toBe('mla');
    expect(spec.mla!.vHeadDim).toBe(8); // hidden 32 / 4 heads
    const w = randomWeights(spec);
    const folded = new Map(w);
    for (const [name, scale] of loadScales(spec))
      folded.set(
        name,
        w.get(name)!.map((x) => x * scale),
      );
    folded.set(
      'model.embed_tokens.weight',
      w.get('model.embed_tokens.weight')!.map((x) => x * spec.embedScale),
    );
    const plain: ModelSpec = { ...spec, embedScale: 1, residualScale: 1, logitScale: 1 };
    const ids = randomIds(T, spec.vocabSize);
    // The embedding is also the tied LM head, which reads it unscaled (the GPU scales in the gather):
    // untie for the comparison so only the gather's table is scaled.
    const untied: ModelSpec = { ...spec, tieWordEmbeddings: false };
    const plainUntied: ModelSpec = { ...plain, tieWordEmbeddings: false };
    folded.set('lm_head.weight', w.get('model.embed_tokens.weight')!);
    w.set('lm_head.weight', w.get('model.embed_tokens.weight')!);
    const want = referenceForward(untied, lookup(w), ids);
    expect(relL2(referenceForward(plainUntied, lookup(folded), ids), want)).toBeLessThan(1e-6);
    expect(relL2(referenceForward(plainUntied, lookup(w), ids), want)).toBeGreaterThan(1e-3);
  });
});

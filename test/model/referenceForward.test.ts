import { describe, expect, it } from 'vitest';
import { parseConfig, type ModelSpec } from '../../src/model/config';
import { relL2, referenceAttention } from '../../src/reference/attention';
import {
  applyRope,
  linear,
  mlaAttention,
  mlaProjections,
  referenceForward,
  rmsNorm,
} from '../../src/reference/transformer';

import { configs, lookup, randn, randomIds, randomWeights } from '../helpers/tinyModels';

const rows = (x: Float64Array, from: number, to: number, width: number) => x.subarray(from * width, to * width);

describe('referenceForward: causality and sanity, every family', () => {
  for (const [name, cfg] of Object.entries(configs)) {
    it(`${name}: prefix logits do not change when tokens are appended; earlier tokens matter`, () => {
      const spec = parseConfig(cfg);
      const w = lookup(randomWeights(spec));
      const T = 9;
      const ids = randomIds(T, spec.vocabSize);
      const full = referenceForward(spec, w, ids); // [T, vocab]
      expect(full.length).toBe(T * spec.vocabSize);
      expect(full.every(Number.isFinite)).toBe(true);
      for (const k of [1, 4, 7]) {
        const prefix = referenceForward(spec, w, ids.slice(0, k));
        expect(relL2(prefix, rows(full, 0, k, spec.vocabSize))).toBeLessThan(1e-12);
      }
      // Changing token 0 changes the last row (unless a sliding window hides it) and row 0.
      const changed = [...ids];
      changed[0] = (ids[0] + 1) % spec.vocabSize;
      const other = referenceForward(spec, w, changed);
      expect(relL2(rows(other, 0, 1, spec.vocabSize), rows(full, 0, 1, spec.vocabSize))).toBeGreaterThan(1e-6);
      if (spec.slidingWindow === null) {
        expect(relL2(rows(other, T - 1, T, spec.vocabSize), rows(full, T - 1, T, spec.vocabSize))).toBeGreaterThan(
          1e-6,
        );
      }
    });
  }
});

describe('referenceForward: variants agree', () => {
  it('MHA with duplicated KV heads equals the GQA model it was copied from', () => {
    const gqa = parseConfig(configs.llama); // 4 heads, 2 KV heads, head_dim 8
    const mha = parseConfig({ ...configs.llama, num_key_value_heads: 4 });
    expect(gqa.attention).toBe('gqa');
    expect(mha.attention).toBe('mha');
    const wg = randomWeights(gqa);
    const wm = new Map(wg);
    const D = gqa.headDim;
    const Hd = gqa.hiddenSize;
    for (let l = 0; l < gqa.numLayers; l++) {
      for (const proj of ['k_proj', 'v_proj']) {
        const src = wg.get(`model.layers.${l}.self_attn.${proj}.weight`)!; // [2 · D, Hd]
        const dst = new Float32Array(4 * D * Hd); // [4 · D, Hd]: KV head j is GQA head floor(j / 2)
        for (let j = 0; j < 4; j++)
          dst.set(src.subarray(Math.floor(j / 2) * D * Hd, (Math.floor(j / 2) + 1) * D * Hd), j * D * Hd);
        wm.set(`model.layers.${l}.self_attn.${proj}.weight`, dst);
      }
    }
    const ids = randomIds(7, gqa.vocabSize);
    const a = referenceForward(gqa, lookup(wg), ids);
    const b = referenceForward(mha, lookup(wm), ids);
    expect(relL2(b, a)).toBeLessThan(1e-12);
    // The wrong head mapping (KV head j = GQA head j % 2) must not agree.
    const wrong = new Map(wm);
    for (let l = 0; l < gqa.numLayers; l++) {
      for (const proj of ['k_proj', 'v_proj']) {
        const src = wg.get(`model.layers.${l}.self_attn.${proj}.weight`)!;
        const dst = new Float32Array(4 * D * Hd);
        for (let j = 0; j < 4; j++) dst.set(src.subarray((j % 2) * D * Hd, ((j % 2) + 1) * D * Hd), j * D * Hd);
        wrong.set(`model.layers.${l}.self_attn.${proj}.weight`, dst);
      }
    }
    expect(relL2(referenceForward(mha, lookup(wrong), ids), a)).toBeGreaterThan(1e-6);
  });

  it('tied embeddings equal an untied model whose lm_head is a copy', () => {
    const tied = parseConfig({ ...configs.qwen3, tie_word_embeddings: true });
    const untied = parseConfig({ ...configs.qwen3, tie_word_embeddings: false });
    const w = randomWeights(tied);
    const wu = new Map(w);
    wu.set('lm_head.weight', new Float32Array(w.get('model.embed_tokens.weight')!));
    const ids = randomIds(6, tied.vocabSize);
    expect(relL2(referenceForward(untied, lookup(wu), ids), referenceForward(tied, lookup(w), ids))).toBe(0);
    // and a different lm_head does change the logits
    const other = new Map(wu);
    other.set('lm_head.weight', randomWeights(untied).get('lm_head.weight')!);
    expect(relL2(referenceForward(untied, lookup(other), ids), referenceForward(tied, lookup(w), ids))).toBeGreaterThan(
      1e-3,
    );
  });

  it('llama with one token is the hand-written GQA step (softmax over one key = its own value)', () => {
    const spec = parseConfig({ ...configs.llama, num_hidden_layers: 1 });
    const wm = randomWeights(spec);
    const w = lookup(wm);
    const { hiddenSize: Hd, headDim: D, numHeads: H, numKvHeads: Hkv, intermediateSize: I, vocabSize: V } = spec;
    const id = Math.floor(Math.random() * V);
    const x = Array.from(w('model.embed_tokens.weight').subarray(id * Hd, (id + 1) * Hd)); // [Hd]
    const norm = (v: number[], g: Float32Array) => {
      const r = 1 / Math.sqrt(v.reduce((s, a) => s + a * a, 0) / v.length + spec.rmsNormEps);
      return v.map((a, i) => a * r * g[i]);
    };
    const matvec = (W: Float32Array, v: number[], out: number) =>
      Array.from({ length: out }, (_, o) => v.reduce((s, a, i) => s + a * W[o * v.length + i], 0));
    const xn = norm(x, w('model.layers.0.input_layernorm.weight'));
    const vkv = matvec(w('model.layers.0.self_attn.v_proj.weight'), xn, Hkv * D); // [Hkv, D]
    const heads: number[] = []; // [H, D]: head h reads KV head h / (H / Hkv)
    for (let h = 0; h < H; h++)
      heads.push(...vkv.slice(Math.floor(h / (H / Hkv)) * D, (Math.floor(h / (H / Hkv)) + 1) * D));
    const attn = matvec(w('model.layers.0.self_attn.o_proj.weight'), heads, Hd);
    const x1 = x.map((a, i) => a + attn[i]);
    const xn2 = norm(x1, w('model.layers.0.post_attention_layernorm.weight'));
    const g = matvec(w('model.layers.0.mlp.gate_proj.weight'), xn2, I);
    const u = matvec(w('model.layers.0.mlp.up_proj.weight'), xn2, I);
    const act = g.map((a, i) => (a / (1 + Math.exp(-a))) * u[i]);
    const down = matvec(w('model.layers.0.mlp.down_proj.weight'), act, Hd);
    const x2 = norm(
      x1.map((a, i) => a + down[i]),
      w('model.norm.weight'),
    );
    const logits = matvec(w('lm_head.weight'), x2, V);
    expect(relL2(referenceForward(spec, w, [id]), logits)).toBeLessThan(1e-12);
  });

  it('gemma = the plain model with norm weights 1 + w and embeddings scaled by sqrt(hidden)', () => {
    const gemma = parseConfig({ ...configs.gemma, tie_word_embeddings: false });
    const plain: ModelSpec = { ...gemma, normWeightPlusOne: false, embedScale: 1 };
    const wg = randomWeights(gemma);
    const wp = new Map(wg);
    for (const [name, t] of wg) {
      if (name.endsWith('norm.weight'))
        wp.set(
          name,
          t.map((a) => 1 + a),
        );
    }
    wp.set(
      'model.embed_tokens.weight',
      wg.get('model.embed_tokens.weight')!.map((a) => a * Math.sqrt(gemma.hiddenSize)),
    );
    const ids = randomIds(6, gemma.vocabSize);
    // f32 rounding of the transformed weights: agreement to ~1e-7, not to the last bit.
    expect(relL2(referenceForward(plain, lookup(wp), ids), referenceForward(gemma, lookup(wg), ids))).toBeLessThan(
      1e-5,
    );
    expect(relL2(referenceForward(plain, lookup(wg), ids), referenceForward(gemma, lookup(wg), ids))).toBeGreaterThan(
      1e-3,
    );
  });

  it('qwen3 q/k norm makes the logits invariant to scaling q_proj and k_proj (llama is not)', () => {
    for (const [cfg, invariant] of [
      [{ ...configs.qwen3, rms_norm_eps: 1e-14 }, true],
      [configs.llama, false],
    ] as const) {
      const spec = parseConfig(cfg);
      const w = randomWeights(spec);
      const scaled = new Map(w);
      for (let l = 0; l < spec.numLayers; l++) {
        for (const [proj, c] of [
          ['q_proj', 3],
          ['k_proj', 0.5],
        ] as const) {
          const name = `model.layers.${l}.self_attn.${proj}.weight`;
          scaled.set(
            name,
            w.get(name)!.map((a) => a * c),
          );
        }
      }
      const ids = randomIds(6, spec.vocabSize);
      const err = relL2(referenceForward(spec, lookup(scaled), ids), referenceForward(spec, lookup(w), ids));
      if (invariant) expect(err).toBeLessThan(1e-6);
      else expect(err).toBeGreaterThan(1e-4);
    }
  });

  it('qwen2 with zero biases equals the bias-free model; non-zero biases change it', () => {
    const spec = parseConfig(configs.qwen2);
    const w = randomWeights(spec);
    const zero = new Map(w);
    for (const [name, t] of w) if (name.endsWith('.bias')) zero.set(name, new Float32Array(t.length));
    const noBias: ModelSpec = { ...spec, attentionBias: false };
    const ids = randomIds(5, spec.vocabSize);
    expect(relL2(referenceForward(spec, lookup(zero), ids), referenceForward(noBias, lookup(w), ids))).toBe(0);
    expect(relL2(referenceForward(spec, lookup(w), ids), referenceForward(noBias, lookup(w), ids))).toBeGreaterThan(
      1e-4,
    );
  });

  it('mistral sliding window: rows before the window fills match full attention, later rows differ', () => {
    const win = parseConfig(configs.mistral); // window 4
    const full: ModelSpec = { ...win, slidingWindow: null };
    const w = lookup(randomWeights(win));
    const T = 8;
    const ids = randomIds(T, win.vocabSize);
    const a = referenceForward(win, w, ids);
    const b = referenceForward(full, w, ids);
    const V = win.vocabSize;
    expect(relL2(rows(a, 0, 4, V), rows(b, 0, 4, V))).toBeLessThan(1e-12);
    expect(relL2(rows(a, 4, T, V), rows(b, 4, T, V))).toBeGreaterThan(1e-6);
    expect(relL2(referenceForward({ ...win, slidingWindow: T }, w, ids), b)).toBeLessThan(1e-12);
  });
});

describe('MLA: the decompressed reference equals the absorbed form', () => {
  for (const name of ['deepseek', 'deepseekV3']) {
    it(`${name}: per-head outputs of attention over latent rows [c_kv | k_pe] with W_UK, W_UV folded in`, () => {
      const spec = parseConfig(configs[name]);
      const { numHeads: H, hiddenSize: Hd } = spec;
      const { kvLoraRank: C, qkNopeHeadDim: N, qkRopeHeadDim: R, vHeadDim: Vd } = spec.mla!;
      const wm = randomWeights(spec);
      const w = lookup(wm);
      const T = 7;
      const xn = new Float64Array(T * Hd).map(randn); // [T, Hd]
      const { heads } = mlaAttention(spec, w, 1, xn, T); // [T, H, Vd]

      // Absorbed: q_lat_h = W_UK_h^T q_nope_h ([C]); query row [q_lat_h | q_pe_h]; key row = the
      // latent row [c_kv | k_pe] (one KV head); V = c_kv; per-head output = W_UV_h · latent output.
      const { qNope, qPe, cKv, kPe } = mlaProjections(spec, w, 1, xn, T);
      const kvB = w('model.layers.1.self_attn.kv_b_proj.weight'); // [H · (N + Vd), C]
      const q = new Float64Array(T * H * (C + R)); // [T, H, C + R]
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) {
          const qo = (t * H + h) * (C + R);
          for (let c = 0; c < C; c++) {
            let s = 0;
            for (let n = 0; n < N; n++) s += qNope[(t * H + h) * N + n] * kvB[(h * (N + Vd) + n) * C + c];
            q[qo + c] = s;
          }
          for (let r = 0; r < R; r++) q[qo + C + r] = qPe[(t * H + h) * R + r];
        }
      }
      const kv = new Float64Array(T * (C + R)); // [T, C + R]
      for (let t = 0; t < T; t++) {
        kv.set(cKv.subarray(t * C, (t + 1) * C), t * (C + R));
        kv.set(kPe.subarray(t * R, (t + 1) * R), t * (C + R) + C);
      }
      const { out: latent } = referenceAttention({
        q,
        k: kv,
        v: cKv,
        numHeads: H,
        numKvHeads: 1,
        headDimQK: C + R,
        headDimV: C,
        seqLensQ: [T],
        seqLensKV: [T],
        scale: spec.softmaxScale, // the scale of the decompressed form: 1/sqrt(N + R) (· mscale²)
      }); // [T, H, C]
      const absorbed = new Float64Array(T * H * Vd); // [T, H, Vd]
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) {
          for (let v = 0; v < Vd; v++) {
            let s = 0;
            for (let c = 0; c < C; c++) s += kvB[(h * (N + Vd) + N + v) * C + c] * latent[(t * H + h) * C + c];
            absorbed[(t * H + h) * Vd + v] = s;
          }
        }
      }
      expect(relL2(absorbed, heads)).toBeLessThan(1e-12);
      // The whole model runs and is finite.
      expect(referenceForward(spec, w, randomIds(5, spec.vocabSize)).every(Number.isFinite)).toBe(true);
    });
  }
});

describe('RoPE', () => {
  const rand = (n: number) => new Float64Array(n).map(randn);
  for (const name of ['llama', 'llama3', 'deepseek', 'deepseekV3']) {
    it(`${name}: position 0 is the identity (times the yarn factor); scores depend on relative position only`, () => {
      const spec = parseConfig(configs[name]);
      const D = spec.rope.rotaryDim;
      const mscale = spec.rope.scaling.type === 'yarn' ? spec.rope.scaling.attentionFactor : 1;
      const x = rand(D);
      const y = new Float64Array(x);
      applyRope(spec, y, 1, 1, D, 0, [0]);
      expect(
        relL2(
          y,
          x.map((a) => a * mscale),
        ),
      ).toBeLessThan(1e-15);
      // q at p, k at p + d: q·k is the same for p = 3 and p = 40.
      const q = rand(D);
      const k = rand(D);
      const dot = (p: number, d: number) => {
        const a = new Float64Array(q);
        const b = new Float64Array(k);
        applyRope(spec, a, 1, 1, D, 0, [p]);
        applyRope(spec, b, 1, 1, D, 0, [p + d]);
        return a.reduce((s, v, i) => s + v * b[i], 0);
      };
      expect(dot(40, 5)).toBeCloseTo(dot(3, 5), 10);
      expect(Math.abs(dot(3, 5) - dot(3, 6))).toBeGreaterThan(1e-9);
      // Rotation keeps the norm (up to the yarn factor).
      const z = new Float64Array(x);
      applyRope(spec, z, 1, 1, D, 0, [17]);
      const n = (v: Float64Array) => Math.sqrt(v.reduce((s, a) => s + a * a, 0));
      expect(n(z)).toBeCloseTo(n(x) * mscale, 10);
    });
  }

  it('interleaved pairs equal rotate-half after de-interleaving (HF DeepSeek permutes first)', () => {
    const inter = parseConfig(configs.deepseek);
    const half: ModelSpec = { ...inter, rope: { ...inter.rope, interleaved: false } };
    const D = inter.rope.rotaryDim;
    const x = rand(D);
    const a = new Float64Array(x);
    applyRope(inter, a, 1, 1, D, 0, [11]);
    // HF: view(d/2, 2).transpose → [x0, x2, x4, ..., x1, x3, ...], then rotate-half.
    const perm = Array.from({ length: D }, (_, i) => (i < D / 2 ? 2 * i : 2 * (i - D / 2) + 1));
    const b = Float64Array.from(perm, (j) => x[j]);
    applyRope(half, b, 1, 1, D, 0, [11]);
    expect(
      relL2(
        Float64Array.from(perm, (_, i) => b[perm.indexOf(i)]),
        a,
      ),
    ).toBeLessThan(1e-14);
  });

  it('helpers: linear is x · W^T + b and rmsNorm normalises rows', () => {
    const y = linear([1, 2], 1, [1, 0, 0, 1, 1, 1], 3, 2, [0, 0, 10]);
    expect(Array.from(y)).toEqual([1, 2, 13]);
    const r = rmsNorm([3, 4], 1, 2, [1, 2], 0);
    const s = Math.sqrt(12.5);
    expect(r[0]).toBeCloseTo(3 / s, 15);
    expect(r[1]).toBeCloseTo(8 / s, 15);
  });
});

/**
 * Every model config in ../shared/realworld (real files from the Hub, a few re-saved) either gives
 * a ModelSpec or is refused with a ModelConfigError naming the exact unsupported field. The folder is
 * walked, so a config added there is covered; the table says what each known one must give.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelConfigError, parseConfig, type ModelSpec } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import { kvBill } from '../../src/model/kvBill';

const REALWORLD = join(__dirname, '..', '..', '..', 'shared', 'realworld');

/** Model configs: config*.json that are not tokenizer / generation configs. */
function modelConfigs(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) modelConfigs(path, out);
    else if (/^config.*\.json$/.test(name) && !/tokenizer|generation/.test(name)) out.push(path);
  }
  return out;
}

/** What each known config gives: a family, or the refused field (the message starts `<file>: <field>:`). */
const EXPECTED: Record<string, { family: string } | { refused: string; why: RegExp }> = {
  'DeepSeek-R1/config.json': { refused: 'n_routed_experts', why: /mixture-of-experts/ },
  'DeepSeek-V2-Lite/config.json': { refused: 'n_routed_experts', why: /mixture-of-experts/ },
  'DeepSeek-V3-Base/config.json': { refused: 'n_routed_experts', why: /mixture-of-experts/ },
  'DeepSeek-native-inference-configs/config_16B.json': { refused: 'model_type', why: /is required/ },
  'DeepSeek-native-inference-configs/config_236B.json': { refused: 'model_type', why: /is required/ },
  'DeepSeek-native-inference-configs/config_671B.json': { refused: 'model_type', why: /is required/ },
  'DeepSeek-native-inference-configs/config_v3.1.json': { refused: 'model_type', why: /is required/ },
  'Falcon3-1B-Base/config.json': { family: 'llama' },
  'Llama-3.2-1B-Instruct/config.json': { family: 'llama' },
  'Llama-3.2-1B-Instruct/config.resaved-4.47.1.json': { family: 'llama' },
  'MiniCPM3-4B/config.json': { family: 'minicpm3' },
  'Phi-3.5-mini-instruct/config.json': { family: 'phi3' },
  'Qwen2.5-0.5B-Instruct/config.json': { family: 'qwen2' },
  'Qwen2.5-0.5B-Instruct/resaved-transformers-4.49/config.json': { family: 'qwen2' },
  'Qwen3-0.6B-Base-ft-transformers-v5/config.json': { family: 'qwen3' },
  'SmolLM2-135M-Instruct/config.json': { family: 'llama' },
  'SmolLM2-135M-resaved-transformers-v5/config.json': { family: 'llama' },
  'SmolLM2-360M-Instruct/config.json': { family: 'llama' },
  'TinyLlama-1.1B-Chat-v1.0/config.json': { family: 'llama' },
  'gemma-3-1b-it/config.json': { family: 'gemma3_text' },
  'gpt-oss-20b/config.json': { refused: 'model_type', why: /sink.*mixture-of-experts/ },
  'hf-internal-testing-tiny-random-t5/config.json': { refused: 'is_encoder_decoder', why: /encoder-decoder/ },
  'pythia-160m/config.json': { refused: 'model_type', why: /gpt_neox/ },
};

const files = modelConfigs(REALWORLD);
const rel = (f: string) => f.slice(REALWORLD.length + 1);

function outcome(file: string): ModelSpec | ModelConfigError {
  try {
    return parseConfig(JSON.parse(readFileSync(file, 'utf8')), rel(file));
  } catch (e) {
    if (e instanceof ModelConfigError) return e;
    throw e;
  }
}

describe('real-world configs', () => {
  it('the folder has the configs the table knows, and only those', () => {
    expect(files.map(rel).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const file of files) {
    it(rel(file), () => {
      const got = outcome(file);
      const want = EXPECTED[rel(file)];
      if ('family' in want) {
        expect(got, got instanceof Error ? got.message : '').not.toBeInstanceOf(Error);
        const spec = got as ModelSpec;
        expect(spec.family).toBe(want.family);
        expect(spec.layers).toHaveLength(spec.numLayers);
        expect(expectedTensors(spec).size).toBeGreaterThan(spec.numLayers);
      } else {
        expect(got).toBeInstanceOf(ModelConfigError);
        const msg = (got as Error).message;
        expect(msg.startsWith(`${rel(file)}: ${want.refused}: `), msg).toBe(true);
        expect(msg).toMatch(want.why);
      }
    });
  }

  it('gemma-3-1b: 5 of every 6 layers slide over 512 tokens with base 10000; the rest are global at 1e6', () => {
    const spec = outcome(join(REALWORLD, 'gemma-3-1b-it/config.json')) as ModelSpec;
    const global = spec.layers.flatMap((l, i) => (l.sliding ? [] : [i]));
    expect(global).toEqual([5, 11, 17, 23]);
    expect(spec.layers.filter((l) => l.rope === 'local')).toHaveLength(22);
    expect(spec.slidingWindow).toBe(512);
    expect(spec.rope.theta).toBe(1e6);
    expect(spec.localRope?.theta).toBe(10000);
    expect(spec.softmaxScale).toBeCloseTo(1 / 16, 12); // query_pre_attn_scalar 256
    expect(spec.qkNorm && spec.sandwichNorms && spec.normWeightPlusOne && spec.tieWordEmbeddings).toBe(true);
    expect(spec.attnLogitSoftcap).toBeNull();
    expect(spec.finalLogitSoftcap).toBeNull();
    expect(spec.embedScale).toBeCloseTo(Math.sqrt(1152), 12);
    expect(spec.activation).toBe('gelu_tanh');
    expect(expectedTensors(spec).get('model.layers.0.pre_feedforward_layernorm.weight')).toEqual([1152]);
    expect(expectedTensors(spec).get('model.layers.0.self_attn.q_norm.weight')).toEqual([256]);
  });

  it('Phi-3.5-mini: fused projections, LongRoPE with 48 factors and its attention factor', () => {
    const spec = outcome(join(REALWORLD, 'Phi-3.5-mini-instruct/config.json')) as ModelSpec;
    expect(spec.fusedProjections).toBe(true);
    const t = expectedTensors(spec);
    expect(t.get('model.layers.0.self_attn.qkv_proj.weight')).toEqual([3 * 3072, 3072]);
    expect(t.get('model.layers.0.mlp.gate_up_proj.weight')).toEqual([2 * 8192, 3072]);
    expect(t.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
    const s = spec.rope.scaling;
    expect(s.type).toBe('longrope');
    if (s.type !== 'longrope') return;
    expect(s.shortFactor).toHaveLength(48);
    expect(s.originalMaxPositionEmbeddings).toBe(4096);
    // factor 131072 / 4096 = 32: sqrt(1 + ln 32 / ln 4096)
    expect(s.attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 12);
    expect(spec.tieWordEmbeddings).toBe(false);
  });

  it('MiniCPM3-4B: family from architectures, dense MLA, muP scales, LongRoPE on the rope part', () => {
    const spec = outcome(join(REALWORLD, 'MiniCPM3-4B/config.json')) as ModelSpec;
    expect(spec.attention).toBe('mla');
    expect(spec.mla).toEqual({ qLoraRank: 768, kvLoraRank: 256, qkNopeHeadDim: 64, qkRopeHeadDim: 32, vHeadDim: 64 });
    expect(spec.rope.interleaved).toBe(false);
    expect(spec.rope.rotaryDim).toBe(32);
    expect(spec.rope.scaling.type).toBe('longrope');
    expect(spec.embedScale).toBe(12);
    expect(spec.residualScale).toBeCloseTo(1.4 / Math.sqrt(62), 12);
    expect(spec.logitScale).toBeCloseTo(256 / 2560, 12);
    expect(spec.softmaxScale).toBeCloseTo(1 / Math.sqrt(96), 12);
    expect(spec.tieWordEmbeddings).toBe(true); // MiniCPM3Config's default
  });
});

describe('KV bill with sliding-window pages freed', () => {
  it('gemma-3-1b at 32768 tokens: 832 MiB with every page, a sixth once sliding layers free theirs', () => {
    const spec = outcome(join(REALWORLD, 'gemma-3-1b-it/config.json')) as ModelSpec;
    const bill = kvBill(spec, 32768, 16, 'f16');
    expect(bill.allPages).toBe(26 * 32768 * 1024); // 1 KV head x (256 + 256) f16 values per token per layer
    expect(bill.windowed).toBe((4 * 2048 + 22 * 33) * 16 * 1024);
    expect(bill.windowed / bill.allPages).toBeCloseTo(1 / 6, 1);
    // Short contexts: no saving before the window fills; Llama has no sliding layer at all.
    expect(kvBill(spec, 500, 16, 'f16').windowed).toBe(kvBill(spec, 500, 16, 'f16').allPages);
    const llama = outcome(join(REALWORLD, 'Llama-3.2-1B-Instruct/config.json')) as ModelSpec;
    expect(kvBill(llama, 32768, 16, 'f16').windowed).toBe(kvBill(llama, 32768, 16, 'f16').allPages);
  });
});

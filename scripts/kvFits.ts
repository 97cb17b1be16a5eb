/**
 * What fits in 8 / 16 / 24 GiB (issue 17's README table): for each model, the weights at q4 and q8
 * (weightBytesAt, the runtime's own rule) and how many tokens of KV the rest of the memory holds at
 * each KV dtype (kvBytesPerToken, exact with q8 / q4 scales). Tokens are summed over sequences: 128K
 * tokens is one 128K-context sequence or eight of 16K. No overhead (step buffers, logits) is counted.
 *
 *   node bin/run-ts.js scripts/kvFits.ts
 *
 * Llama-3.2-1B uses its real config (../shared/realworld); Llama-3.1-8B and the MHA 7B (Llama-2-7b)
 * are written here from their public config.json values. DeepSeek-V2-Lite is MoE, which the runtime
 * refuses, so its KV comes from its real config's MLA dims and its weights from its published
 * parameter count (15.7B) at GGUF's Q4_0 / Q8_0 bits per weight (4.5 / 8.5).
 */
import { readFileSync } from 'node:fs';
import { KV_DTYPES, type KvDtype } from '../src/gpu/dtype';
import { kvBytesPerToken, type KvSpec } from '../src/kv/accounting';
import { parseConfig } from '../src/model/config';
import { runtimeTensors } from '../src/model/expectedTensors';
import { kvSpecOf } from '../src/model/kvBill';
import { weightBytesAt } from '../src/model/weights';

const REALWORLD = new URL('../../shared/realworld/', import.meta.url);
const GiB = 2 ** 30;

const llama = (o: Record<string, unknown>) => ({
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  rms_norm_eps: 1e-5,
  hidden_act: 'silu',
  tie_word_embeddings: false,
  ...o,
});

interface Row {
  name: string;
  weights: { q4: number; q8: number };
  kv: (dtype: KvDtype) => KvSpec;
}

function fromConfig(name: string, json: unknown): Row {
  const spec = parseConfig(json, name);
  const tensors = runtimeTensors(spec);
  return {
    name,
    weights: { q4: weightBytesAt(tensors, 'q4'), q8: weightBytesAt(tensors, 'q8') },
    kv: (dtype) => kvSpecOf(spec, dtype),
  };
}

const ds = JSON.parse(readFileSync(new URL('DeepSeek-V2-Lite/config.json', REALWORLD), 'utf8'));
const rows: Row[] = [
  fromConfig(
    'Llama-3.2-1B (GQA 32/8)',
    JSON.parse(readFileSync(new URL('Llama-3.2-1B-Instruct/config.json', REALWORLD), 'utf8')),
  ),
  fromConfig(
    'Llama-3.1-8B (GQA 32/8)',
    llama({
      hidden_size: 4096,
      intermediate_size: 14336,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      vocab_size: 128256,
      max_position_embeddings: 131072,
      rope_theta: 500000,
    }),
  ),
  fromConfig(
    'Llama-2-7B (MHA 32/32)',
    llama({
      hidden_size: 4096,
      intermediate_size: 11008,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      vocab_size: 32000,
      max_position_embeddings: 4096,
      rope_theta: 10000,
    }),
  ),
  {
    name: 'DeepSeek-V2-Lite (MLA, MoE: KV only)',
    weights: { q4: (15.7e9 * 4.5) / 8, q8: (15.7e9 * 8.5) / 8 },
    kv: (dtype) => ({
      variant: 'mla',
      numLayers: ds.num_hidden_layers,
      numKvHeads: 1,
      headDimQK: ds.kv_lora_rank + ds.qk_rope_head_dim,
      headDimV: ds.kv_lora_rank,
      latentDim: ds.kv_lora_rank,
      ropeDim: ds.qk_rope_head_dim,
      dtype,
    }),
  },
];

const Mi = 1024 * 1024;
const tokens = (n: number) => (n <= 0 ? 'none' : n >= Mi ? `${(n / Mi).toFixed(1)}M` : `${Math.floor(n / 1024)}K`);
export async function main(): Promise<number> {
  const kvDtypes = KV_DTYPES.filter((d) => d !== 'f32');
  console.log(
    `| model | KV B/token (${kvDtypes.join(' / ')}) | weights q4 | ` +
      [8, 16, 24].map((g) => `${g} GiB: KV tokens (${kvDtypes.join(' / ')})`).join(' | ') +
      ' |',
  );
  console.log(`|---|---|---:|${[8, 16, 24].map(() => '---').join('|')}|`);
  for (const r of rows) {
    const perToken = kvDtypes.map((d) => kvBytesPerToken(r.kv(d)));
    const cells = [8, 16, 24].map((g) => perToken.map((b) => tokens((g * GiB - r.weights.q4) / b)).join(' / '));
    console.log(
      `| ${r.name} | ${perToken.map((b) => b.toLocaleString('en')).join(' / ')} | ` +
        `${(r.weights.q4 / GiB).toFixed(2)} GiB | ${cells.join(' | ')} |`,
    );
  }
  return 0;
}

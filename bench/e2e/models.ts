/**
 * The e2e bench's model folders, made in Node before the page opens, under bench/e2e/models/
 * (gitignored; rebuilt when missing). Each folder holds one model in every runtime's format:
 *
 *   config.json, generation_config.json, tokenizer.json, tokenizer_config.json
 *   model.safetensors      webattn (the checkpoint itself)
 *   onnx/model.onnx, onnx/model_plain.onnx, model-F32.gguf, model-Q8_0.gguf
 *                          the peers' files (peerFiles.ts: transformers.js's two ONNX graphs, wllama's GGUF)
 *
 * Models: the shipped kjv-gqa and kjv-mha (copied from models/), and smollm2-135m-random: the real
 * SmolLM2-135M-Instruct config and tokenizer (../shared/realworld) with seeded random weights, so the
 * bench has a model of a real size without shipping or downloading one.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { type TensorToWrite, writeSafetensors } from '../../src/sources/safetensors';
import { repoRoot } from '../chromium';
import { makePeerFile, PEER_FILES } from './peerFiles';

export const E2E_MODELS = ['kjv-gqa', 'kjv-mha', 'smollm2-135m-random'] as const;
export type E2eModel = (typeof E2E_MODELS)[number];

export const modelsDir = path.join(repoRoot, 'bench/e2e/models');
const TEXT_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];
const SMOLLM2 = path.resolve(repoRoot, '../shared/realworld/SmolLM2-135M-Instruct');
/** Bump when what a folder holds changes: older folders are rebuilt. */
const LAYOUT_VERSION = '3';

/** A value in [-1, 1) from (seed, index). */
function hashUnit(seed: number, i: number): number {
  let x = Math.imul((i ^ Math.imul(seed, 0x27d4eb2d)) >>> 0, 0x9e3779b1);
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return (x >>> 0) / 2 ** 31 - 1;
}

/**
 * Seeded weights of the SmolLM2 shape: matrices uniform with std 1/sqrt(fan-in) · 0.5 (activations
 * stay O(1) through 30 layers, logits spread enough that greedy argmax has no near-ties), norms 1,
 * the embedding std 0.5. f16 values (the checkpoint's own dtype class; every runtime reads them exactly).
 */
function randomSmolLm2(config: Record<string, number>): Record<string, TensorToWrite> {
  const hid = config.hidden_size;
  const inter = config.intermediate_size;
  const H = config.num_attention_heads;
  const Hkv = config.num_key_value_heads;
  const D = hid / H;
  const tensors: Record<string, TensorToWrite> = {};
  let seed = 1;
  const uniform = (shape: number[], std: number): TensorToWrite => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const a = std * Math.sqrt(3);
    const s = seed++;
    for (let i = 0; i < n; i++) data[i] = a * hashUnit(s, i);
    return { dtype: 'F16', shape, data };
  };
  const ones = (n: number): TensorToWrite => ({ dtype: 'F16', shape: [n], data: new Float32Array(n).fill(1) });
  tensors['model.embed_tokens.weight'] = uniform([config.vocab_size, hid], 0.5);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    tensors[`${p}.input_layernorm.weight`] = ones(hid);
    tensors[`${p}.post_attention_layernorm.weight`] = ones(hid);
    tensors[`${p}.self_attn.q_proj.weight`] = uniform([H * D, hid], 0.5 / Math.sqrt(hid));
    tensors[`${p}.self_attn.k_proj.weight`] = uniform([Hkv * D, hid], 0.5 / Math.sqrt(hid));
    tensors[`${p}.self_attn.v_proj.weight`] = uniform([Hkv * D, hid], 0.5 / Math.sqrt(hid));
    tensors[`${p}.self_attn.o_proj.weight`] = uniform([hid, H * D], 0.5 / Math.sqrt(H * D));
    tensors[`${p}.mlp.gate_proj.weight`] = uniform([inter, hid], 0.5 / Math.sqrt(hid));
    tensors[`${p}.mlp.up_proj.weight`] = uniform([inter, hid], 0.5 / Math.sqrt(hid));
    tensors[`${p}.mlp.down_proj.weight`] = uniform([hid, inter], 0.5 / Math.sqrt(inter));
  }
  tensors['model.norm.weight'] = ones(hid);
  return tensors;
}

/** Makes (or keeps, when complete) the folder of `name`; returns its path. */
export async function prepareModel(name: E2eModel, log: (msg: string) => void = console.log): Promise<string> {
  const dir = path.join(modelsDir, name);
  const stamp = path.join(dir, 'e2e-layout.txt');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === LAYOUT_VERSION) return dir;
  const t0 = performance.now();
  mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  if (name === 'smollm2-135m-random') {
    for (const f of ['generation_config.json', 'tokenizer_config.json'])
      copyFileSync(path.join(SMOLLM2, f), path.join(dir, f));
    // The GGUF writer takes a plain ByteLevel pre-tokenizer; SmolLM2's is Sequence(Digits, ByteLevel).
    // Only the Digits split is lost, and the bench's prompts are words of letters: every runtime
    // tokenizes them the same either way.
    const tok = JSON.parse(readFileSync(path.join(SMOLLM2, 'tokenizer.json'), 'utf8'));
    const byteLevel = tok.pre_tokenizer.pretokenizers.find((p: { type: string }) => p.type === 'ByteLevel');
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ ...tok, pre_tokenizer: byteLevel }));
    const config = JSON.parse(readFileSync(path.join(SMOLLM2, 'config.json'), 'utf8'));
    // head_dim is absent from SmolLM2's config (576 / 9 = 64); the dtype is what the file holds.
    writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify({ ...config, torch_dtype: 'float16' }, null, 2)}\n`);
    writeFileSync(
      path.join(dir, 'model.safetensors'),
      writeSafetensors(randomSmolLm2(config), { format: 'pt', note: 'seeded random weights, webattn e2e bench' }),
    );
  } else {
    const src = path.join(repoRoot, 'models', name);
    for (const f of [...TEXT_FILES, 'model.safetensors']) copyFileSync(path.join(src, f), path.join(dir, f));
  }
  const files = await loadModelFiles(folderSource(dir), { needTokenizer: true });
  for (const file of PEER_FILES) writeFileSync(path.join(dir, file), makePeerFile(files, name, file));
  writeFileSync(stamp, `${LAYOUT_VERSION}\n`);
  log(`prepared ${path.relative(repoRoot, dir)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/** Node entry for preparing alone: `node bin/run-ts.js bench/e2e/models.ts [name...]`. */
export async function main(argv: string[]): Promise<number> {
  const names = (argv.length ? argv : E2E_MODELS) as E2eModel[];
  for (const n of names) {
    if (!E2E_MODELS.includes(n)) throw new Error(`unknown model ${n} (${E2E_MODELS.join(', ')})`);
    await prepareModel(n);
  }
  return 0;
}

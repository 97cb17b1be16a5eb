/**
 * The shipped models (models/kjv-*) and their torch fixtures (test/fixtures/models/<name>.json +
 * <name>.f32), as written by tools/train/train_all.py: prompt ids (16 tokens of a validation
 * chapter, after <s>) and torch's float64 logits [ids.length, vocab] of the shipped f16 weights.
 */
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig, type ModelSpec } from '../../src/model/config';
import { parseSafetensors, readTensorF32, type SafetensorsFile } from '../../src/sources/safetensors';

export const SHIPPED_MODELS = ['kjv-mha', 'kjv-gqa', 'kjv-mqa', 'kjv-mla'] as const;
export type ShippedModel = (typeof SHIPPED_MODELS)[number];

/** Absolute path of a repo-relative path. */
export const repoPath = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

export interface TorchFixture {
  ids: number[];
  /** [ids.length, vocab], row t = the prediction after token t. */
  logits: Float32Array;
}

export function torchFixture(name: ShippedModel): TorchFixture {
  const meta = JSON.parse(readFileSync(repoPath(`test/fixtures/models/${name}.json`), 'utf8')) as {
    ids: number[];
    logits: string;
    shape: number[];
  };
  const bytes = readFileSync(repoPath(`test/fixtures/models/${meta.logits}`));
  const logits = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (logits.length !== meta.shape[0] * meta.shape[1] || meta.shape[0] !== meta.ids.length) {
    throw new Error(
      `${name}: fixture logits have ${logits.length} values, shape [${meta.shape}] for ${meta.ids.length} ids`,
    );
  }
  return { ids: meta.ids, logits };
}

export function shippedSpec(name: ShippedModel): ModelSpec {
  return parseConfig(
    JSON.parse(readFileSync(repoPath(`models/${name}/config.json`), 'utf8')),
    `models/${name}/config.json`,
  );
}

export function shippedWeights(name: ShippedModel): {
  file: SafetensorsFile;
  bytes: number;
  weight: (n: string) => Float32Array;
} {
  const path = repoPath(`models/${name}/model.safetensors`);
  const file = parseSafetensors(new Uint8Array(readFileSync(path)), `models/${name}/model.safetensors`);
  const cache = new Map<string, Float32Array>();
  const weight = (n: string) => {
    let w = cache.get(n);
    if (!w) cache.set(n, (w = readTensorF32(file, n)));
    return w;
  };
  return { file, bytes: statSync(path).size, weight };
}

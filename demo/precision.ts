/**
 * The chat page's "Precision and memory" choices, priced for one model before anything is
 * downloaded (no DOM, no GPU: tested in test/demo/precision.test.ts):
 *   weights  q4 / q8 / f16 / f32 (LOAD_DTYPES), each with the GPU bytes it costs for this model
 *            (weightBytesByFormat: the runtime's own storedDtype rule) and whether its largest buffer
 *            fits the adapter's binding limit; a GGUF file's weights are already quantized, so it
 *            offers one choice, "as stored", at the bytes of the file's tensors
 *   KV       every KV dtype the runtime has (KV_DTYPES: adding one there adds it here), with its bytes
 *            per token from the KV accounting
 * A ModelPlan is what the page learns from config.json (or a GGUF header) alone; engineClient.ts
 * reads it (readModelPlan) and chat.ts shows it.
 */
import { KV_DTYPES, type KvDtype } from '../src/gpu/dtype';
import { kvBytesPerToken } from '../src/kv/accounting';
import type { ModelSpec } from '../src/model/config';
import {
  type FormatBytes,
  formatTypeCounts,
  type GgufStoredWeights,
  LOAD_DTYPES,
  parameterCount,
  type TensorBytes,
  weightBytesByFormat,
} from '../src/model/weightFormats';
import type { LoadDtype } from '../src/model/weights';
import { kvSpecOf } from './kvCost';
import { formatBytes } from './shell';

/** What the weights menu offers: a load format, or a GGUF file's own blocks. */
export type WeightChoice = LoadDtype | 'stored';

/** The weight formats in the menu, smallest first (q4, q8, f16, f32). */
export const WEIGHT_CHOICES: readonly LoadDtype[] = [...LOAD_DTYPES].reverse();

/** What the menu says about each format. */
export const FORMAT_NOTES: Record<LoadDtype, string> = {
  q4: '4-bit blocks, embedding q8',
  q8: '8-bit blocks',
  f16: 'half precision',
  f32: 'full precision',
};

export interface AdapterLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** A model as config.json (or a GGUF header) describes it, before its weights are downloaded. */
export interface ModelPlan {
  spec: ModelSpec;
  parameters: number;
  /** GPU bytes at each load format (safetensors: quantized on load to q8 / q4). */
  formats: FormatBytes[];
  /** A GGUF file: its tensors as stored, its name, the chat template flag from its metadata. */
  gguf: (GgufStoredWeights & { fileName: string; hasChatTemplate: boolean }) | null;
}

export function planFromSpec(spec: ModelSpec, gguf: ModelPlan['gguf'] = null): ModelPlan {
  return { spec, parameters: parameterCount(spec), formats: weightBytesByFormat(spec), gguf };
}

export interface WeightCost {
  choice: WeightChoice;
  /** The weights' GPU bytes. */
  bytes: number;
  largest: TensorBytes;
  /** Why this choice cannot load on this adapter, with the numbers; null when it fits. */
  problem: string | null;
}

/** The choices a plan offers: "as stored" for a GGUF file, else q4 / q8 / f16 / f32. */
export function weightChoices(plan: ModelPlan): WeightChoice[] {
  return plan.gguf ? ['stored'] : [...WEIGHT_CHOICES];
}

/**
 * The cost of loading the plan's weights as `choice` on an adapter with `limits`. Each weight is one
 * GPU buffer bound whole, so the largest (usually the embedding table) must fit one binding
 * (maxStorageBufferBindingSize) and one buffer (maxBufferSize).
 * e.g. kjv-gqa at f16 on a 256 KiB binding: "model.embed_tokens.weight takes 512 KiB in f16, and
 * this GPU binds at most 256 KiB at once (maxStorageBufferBindingSize)".
 */
export function weightCost(plan: ModelPlan, choice: WeightChoice, limits: AdapterLimits): WeightCost {
  let bytes: number;
  let largest: TensorBytes;
  if (choice === 'stored') {
    if (!plan.gguf) throw new Error('weightCost: "as stored" is a GGUF file\'s choice');
    ({ bytes, largest } = plan.gguf);
  } else {
    const f = plan.formats.find((x) => x.dtype === choice);
    if (!f) throw new Error(`weightCost: no bytes for ${choice}`);
    ({ bytes, largest } = f);
  }
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const which =
    limits.maxBufferSize < limits.maxStorageBufferBindingSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  const as = choice === 'stored' ? 'as the GGUF file stores it' : `in ${choice}`;
  const problem =
    largest.bytes > limit
      ? `${largest.name} takes ${formatBytes(largest.bytes)} ${as}, ` +
        `and this GPU binds at most ${formatBytes(limit)} at once (${which})`
      : null;
  return { choice, bytes, largest, problem };
}

/** The smallest-first choices that fit, for a refusal's "Load with q8 weights" buttons. */
export function fittingChoices(plan: ModelPlan, limits: AdapterLimits): WeightCost[] {
  return weightChoices(plan)
    .map((c) => weightCost(plan, c, limits))
    .filter((c) => c.problem === null);
}

/** One line of the weights menu (short: a select is narrow): "q4 · 688 KiB", "f16 · 1.94 MiB · too big". */
export function weightOptionLabel(cost: WeightCost): string {
  const name = cost.choice === 'stored' ? 'as stored' : cost.choice;
  return `${name} · ${formatBytes(cost.bytes)}${cost.problem ? ' · too big' : ''}`;
}

/**
 * The sentence under the menu about the chosen format: "1.02M parameters: 688 KiB on the GPU in q4
 * (4-bit blocks, embedding q8)", or for a GGUF file what it stores; the refusal follows it.
 */
export function weightNote(plan: ModelPlan, cost: WeightCost): string {
  if (plan.gguf) {
    const types = formatTypeCounts(plan.gguf.types);
    return (
      `${plan.gguf.fileName}: its weights are already quantized (GGUF ${types}) and load as the file ` +
      `stores them: ${formatBytes(cost.bytes)} on the GPU`
    );
  }
  const millions = (plan.parameters / 1e6).toFixed(plan.parameters < 1e7 ? 2 : 0);
  const note = cost.choice === 'stored' ? '' : ` in ${cost.choice} (${FORMAT_NOTES[cost.choice]})`;
  return `${millions}M parameters: ${formatBytes(cost.bytes)} on the GPU${note}`;
}

export interface KvChoice {
  dtype: KvDtype;
  /** KV bytes of one token over all layers; null when the accounting cannot price this dtype. */
  bytesPerToken: number | null;
}

/** Every KV dtype with its bytes per token for `spec`, smallest first (no spec: no bytes, KV_DTYPES' order). */
export function kvChoices(spec: ModelSpec | null): KvChoice[] {
  const priced = KV_DTYPES.map((dtype) => {
    let bytesPerToken: number | null = null;
    if (spec) {
      try {
        bytesPerToken = kvBytesPerToken(kvSpecOf(spec, dtype));
      } catch {
        bytesPerToken = null; // a dtype the accounting does not price yet: offered without bytes
      }
    }
    return { dtype, bytesPerToken };
  });
  if (priced.some((c) => c.bytesPerToken === null)) return priced; // the list's own order
  return priced.sort((a, b) => a.bytesPerToken! - b.bytesPerToken!);
}

/** One line of the KV menu: "f16 · 512 B per token". */
export function kvOptionLabel(c: KvChoice): string {
  return c.bytesPerToken === null ? c.dtype : `${c.dtype} · ${formatBytes(c.bytesPerToken)} per token`;
}

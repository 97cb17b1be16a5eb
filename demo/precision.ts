/**
 * The chat page's "Precision and memory" choices, priced for one model before anything is
 * downloaded (no DOM, no GPU: tested in test/demo/precision.test.ts):
 *   weights  q4 / q8 / f16 / f32 (LOAD_DTYPES), each with the GPU bytes it costs for this model
 *            (weightBytesByFormat: the runtime's own storedDtype rule); a GGUF file's weights are
 *            already quantized, so it offers one choice, "as stored", at the bytes of the file's tensors
 *   KV       every KV dtype the runtime has (KV_DTYPES: adding one there adds it here), with its bytes
 *            per token from the KV accounting
 * No format is refused for a weight past the adapter's binding limit: the runtime uploads such a
 * matrix as row shards (src/kernels/rowShards.ts), and the note says into how many buffers, by
 * planRowShards' own arithmetic. Refused before download is only what cannot run: MLA's kv_b_proj,
 * which the head matmul binds whole, past one binding (or a matrix whose 64 rows pass it). Memory is
 * not checked here (WebGPU does not say how much the device has): a model too big for it fails at
 * load with the runtime's OutOfMemoryError, which names the tensor and the model's bytes.
 * A ModelPlan is what the page learns from config.json (or a GGUF header) alone; engineClient.ts
 * reads it (readModelPlan) and chat.ts shows it.
 */
import { KV_DTYPES, type KvDtype, type MatrixDtype } from '../src/gpu/dtype';
import { matrixBufferBytes } from '../src/kernels/matmulQuant';
import { maxShardBytes, planRowShards } from '../src/kernels/rowShards';
import { kvBytesPerToken, kvDtypeProblem } from '../src/kv/accounting';
import type { ModelSpec } from '../src/model/config';
import { runtimeTensors } from '../src/model/expectedTensors';
import { GGUF_GPU_FORMATS } from '../src/model/ggufModelFiles';
import {
  type FormatBytes,
  formatTypeCounts,
  type GgufStoredWeights,
  LOAD_DTYPES,
  parameterCount,
  type TensorBytes,
  weightBytesByFormat,
} from '../src/model/weightFormats';
import { type LoadDtype, storedDtype } from '../src/model/weights';
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
  gguf: (GgufStoredWeights & { fileName: string; hasChatTemplate: boolean; tensors: GgufPlanTensor[] }) | null;
}

/** One tensor of a GGUF header: its GGUF name, type ('Q4_0', 'F32'...) and row-major shape. */
export interface GgufPlanTensor {
  name: string;
  type: string;
  shape: readonly number[];
}

/** A weight buffer as the runtime allocates it: [rows, cols] (a 1-D tensor is one row) in `dtype`. */
interface PlannedBuffer {
  name: string;
  shape: readonly number[];
  dtype: MatrixDtype;
}

export function planFromSpec(spec: ModelSpec, gguf: ModelPlan['gguf'] = null): ModelPlan {
  return { spec, parameters: parameterCount(spec), formats: weightBytesByFormat(spec), gguf };
}

/** The weights past one binding, which the runtime uploads as row shards. */
export interface WeightSplit {
  /** Bytes one shard may take here: min(maxStorageBufferBindingSize, maxBufferSize). */
  limit: number;
  /** Weights split, and the buffers they take in all. */
  tensors: number;
  buffers: number;
  /** The largest of them and its shard count. */
  largest: TensorBytes & { buffers: number };
}

export interface WeightCost {
  choice: WeightChoice;
  /** The weights' GPU bytes. */
  bytes: number;
  largest: TensorBytes;
  /** Why this choice cannot run on this adapter, with the numbers; null when it can. */
  problem: string | null;
  /** The weights split by rows across buffers on this adapter; null when each fits one binding. */
  split: WeightSplit | null;
}

/** The choices a plan offers: "as stored" for a GGUF file, else q4 / q8 / f16 / f32. */
export function weightChoices(plan: ModelPlan): WeightChoice[] {
  return plan.gguf ? ['stored'] : [...WEIGHT_CHOICES];
}

/** MLA's kv_b_proj (HF name, or GGUF's attn_kv_b): read per head by headMatmul, bound whole. */
const KV_B = /(\.kv_b_proj|\.attn_kv_b)\.weight$/;

/**
 * The buffers the runtime allocates for the plan's weights at `choice`: a checkpoint's tensors at
 * storedDtype (runtimeTensors, as Transformer.load uploads them); a GGUF file's tensors in their
 * own block format where it is a GPU one, else f16 (plain matrices, norms, kv_b_proj: the vector
 * dtype of a GGUF load) or q8 (a block type the GPU lacks, quantized on load). A converter's
 * attn_k_b [H, C, N] + attn_v_b [H, V, C] pair is the one kv_b_proj [H (N + V), C] the runtime merges.
 */
function plannedBuffers(plan: ModelPlan, choice: WeightChoice): PlannedBuffer[] {
  if (choice !== 'stored') {
    return [...runtimeTensors(plan.spec)].map(([name, shape]) => ({
      name,
      shape,
      dtype: storedDtype(name, shape, choice),
    }));
  }
  if (!plan.gguf) throw new Error('weightCost: "as stored" is a GGUF file\'s choice');
  const byName = new Map(plan.gguf.tensors.map((t) => [t.name, t]));
  const out: PlannedBuffer[] = [];
  for (const t of plan.gguf.tensors) {
    if (/\.attn_v_b\.weight$/.test(t.name)) continue; // merged into its layer's attn_k_b below
    const vb = byName.get(t.name.replace(/attn_k_b\.weight$/, 'attn_v_b.weight'));
    if (/\.attn_k_b\.weight$/.test(t.name) && vb && t.shape.length === 3 && vb.shape.length === 3) {
      const [heads, latent, nope] = t.shape;
      const name = t.name.replace(/attn_k_b\.weight$/, 'attn_kv_b.weight');
      out.push({ name, shape: [heads * (nope + vb.shape[1]), latent], dtype: 'f16' });
      continue;
    }
    const block = KV_B.test(t.name) ? undefined : GGUF_GPU_FORMATS[t.type as keyof typeof GGUF_GPU_FORMATS];
    const plain = ['F32', 'F16', 'BF16', 'F64'].includes(t.type) || KV_B.test(t.name);
    out.push({ name: t.name, shape: t.shape, dtype: block ?? (plain ? 'f16' : 'q8') });
  }
  return out;
}

/**
 * The cost of loading the plan's weights as `choice` on an adapter with `limits`: their bytes, the
 * weights the runtime splits by rows because one binding (maxStorageBufferBindingSize) or one
 * buffer (maxBufferSize) cannot hold them (planRowShards), and what cannot run at all: MLA's
 * kv_b_proj past one binding, or a matrix of which not even 64 rows fit.
 * e.g. kjv-gqa at f16 on a 256 KiB binding: model.embed_tokens.weight (512 KiB) in 2 buffers, no problem;
 * an MLA model whose kv_b_proj [4096, 512] takes 4 MiB in f16 on a 2 MiB binding: refused, with those numbers.
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
  const limit = maxShardBytes(limits);
  const which =
    limits.maxBufferSize < limits.maxStorageBufferBindingSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  let problem: string | null = null;
  let split: WeightSplit | null = null;
  for (const { name, shape, dtype } of plannedBuffers(plan, choice)) {
    const [rows, cols] = shape.length === 2 ? shape : [1, shape.reduce((a, b) => a * b, 1)];
    const whole = matrixBufferBytes(dtype, rows, cols);
    if (whole <= limit) continue;
    if (KV_B.test(name)) {
      problem ??=
        `${name} [${shape.join(', ')}] takes ${formatBytes(whole)} in ${dtype}, and MLA's head matmul reads it ` +
        `whole, while this GPU binds at most ${formatBytes(limit)} at once (${which})`;
      continue;
    }
    let buffers: number;
    try {
      buffers = planRowShards(rows, (r) => matrixBufferBytes(dtype, r, cols), limit, name).length;
    } catch {
      problem ??=
        `${name} [${shape.join(', ')}] cannot be split by rows to fit: 64 of its rows take ` +
        `${formatBytes(matrixBufferBytes(dtype, 64, cols))} in ${dtype}, and this GPU binds at most ` +
        `${formatBytes(limit)} at once (${which})`;
      continue;
    }
    split ??= { limit, tensors: 0, buffers: 0, largest: { name, bytes: whole, buffers } };
    split.tensors++;
    split.buffers += buffers;
    if (whole > split.largest.bytes) split.largest = { name, bytes: whole, buffers };
  }
  return { choice, bytes, largest, problem, split };
}

/** The smallest-first choices that can run here, for a refusal's "Load with f16 weights" buttons. */
export function fittingChoices(plan: ModelPlan, limits: AdapterLimits): WeightCost[] {
  return weightChoices(plan)
    .map((c) => weightCost(plan, c, limits))
    .filter((c) => c.problem === null);
}

/** One line of the weights menu (a select is narrow): "q4 · 688 KiB"; a refused one "f32 · 3.9 MiB · too big". */
export function weightOptionLabel(cost: WeightCost): string {
  const name = cost.choice === 'stored' ? 'as stored' : cost.choice;
  return `${name} · ${formatBytes(cost.bytes)}${cost.problem ? ' · too big' : ''}`;
}

/**
 * The sentence under the menu about the chosen format: "1.02M parameters: 688 KiB on the GPU in q4
 * (4-bit blocks, embedding q8)", or for a GGUF file what it stores, then the weights split by
 * rows (splitNote); the refusal follows it.
 */
export function weightNote(plan: ModelPlan, cost: WeightCost): string {
  const split = splitNote(cost.split);
  if (plan.gguf) {
    const types = formatTypeCounts(plan.gguf.types);
    return (
      `${plan.gguf.fileName}: its weights are already quantized (GGUF ${types}) and load as the file ` +
      `stores them: ${formatBytes(cost.bytes)} on the GPU${split}`
    );
  }
  const millions = (plan.parameters / 1e6).toFixed(plan.parameters < 1e7 ? 2 : 0);
  const note = cost.choice === 'stored' ? '' : ` in ${cost.choice} (${FORMAT_NOTES[cost.choice]})`;
  return `${millions}M parameters: ${formatBytes(cost.bytes)} on the GPU${note}${split}`;
}

/**
 * "; past this GPU's 256 KiB binding, model.embed_tokens.weight (272 KiB) is split by rows into 2
 * buffers", or for several "...3 weights are split by rows into 8 buffers (the largest,
 * model.embed_tokens.weight, 272 KiB, into 4)"; "" when nothing is split.
 */
export function splitNote(split: WeightSplit | null): string {
  if (!split) return '';
  const past = `; past this GPU's ${formatBytes(split.limit)} binding, `;
  const { name, bytes, buffers } = split.largest;
  if (split.tensors === 1) return `${past}${name} (${formatBytes(bytes)}) is split by rows into ${buffers} buffers`;
  return (
    `${past}${split.tensors} weights are split by rows into ${split.buffers} buffers ` +
    `(the largest, ${name}, ${formatBytes(bytes)}, into ${buffers})`
  );
}

export interface KvChoice {
  dtype: KvDtype;
  /** KV bytes of one token over all layers; null when the accounting cannot price this dtype. */
  bytesPerToken: number | null;
  /** Why this model cannot store its KV so (q4 on heads too small for it: kvDtypeProblem); null when it can. */
  problem: string | null;
}

/** Every KV dtype with its bytes per token for `spec`, smallest first (no spec: no bytes, KV_DTYPES' order). */
export function kvChoices(spec: ModelSpec | null): KvChoice[] {
  const priced = KV_DTYPES.map((dtype) => {
    let bytesPerToken: number | null = null;
    const problem = spec ? kvDtypeProblem(kvSpecOf(spec, dtype)) : null; // what Transformer.load refuses
    if (spec) {
      try {
        bytesPerToken = kvBytesPerToken(kvSpecOf(spec, dtype));
      } catch {
        bytesPerToken = null; // a dtype the accounting does not price yet: offered without bytes
      }
    }
    return { dtype, bytesPerToken, problem };
  });
  if (priced.some((c) => c.bytesPerToken === null)) return priced; // the list's own order
  return priced.sort((a, b) => a.bytesPerToken! - b.bytesPerToken!);
}

/** One line of the KV menu: "f16 · 512 B per token". */
export function kvOptionLabel(c: KvChoice): string {
  return c.bytesPerToken === null ? c.dtype : `${c.dtype} · ${formatBytes(c.bytesPerToken)} per token`;
}

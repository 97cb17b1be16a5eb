/**
 * phi3's fused projections, split at load without copying: a ModelFiles view in which each slice
 * of fusedSlices(spec) (q_proj, k_proj, v_proj rows of qkv_proj; gate_proj, up_proj rows of
 * gate_up_proj) is a tensor of its own, a byte range of the fused one. Rows are contiguous in a
 * row-major [rows, cols] tensor, so rows [r0, r0 + n) are bytes [begin + r0·cols·e, begin + (r0 + n)·cols·e)
 * with e the element size (2 for F16 / BF16, 4 for F32).
 * e.g. Phi-3.5 layer 0 qkv_proj [9216, 3072] BF16 at bytes [b, b + 56623104): k_proj is rows
 * 3072..6143 = bytes [b + 18874368, b + 37748736).
 * The fused tensors themselves are checked first (checkWeights against expectedTensors), so a
 * wrong fused shape is reported under its own name.
 */
import type { ModelFiles } from '../sources/modelSource';
import type { SafetensorsFile, TensorInfo } from '../sources/safetensors';
import type { ModelSpec } from './config';
import { fusedSlices } from './expectedTensors';

const ELEMENT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/** The view; `files` itself when the spec has no fused projections. */
export function splitFusedTensors(files: ModelFiles, spec: ModelSpec): ModelFiles {
  const slices = fusedSlices(spec);
  if (!slices.size) return files;
  const fused = new Set([...slices.values()].map((s) => s.source));
  const made = new Map<string, { file: SafetensorsFile; info: TensorInfo } | null>();
  const tensor = (name: string): { file: SafetensorsFile; info: TensorInfo } | null => {
    const slice = slices.get(name);
    if (!slice) return fused.has(name) ? null : files.tensor(name);
    if (made.has(name)) return made.get(name)!;
    const src = files.tensor(slice.source);
    let out: { file: SafetensorsFile; info: TensorInfo } | null = null;
    const elem = src ? ELEMENT_BYTES[src.info.dtype] : undefined;
    if (src && elem && src.info.shape.length === 2) {
      const cols = src.info.shape[1];
      const begin = src.info.begin + slice.firstRow * cols * elem;
      const end = begin + slice.rows * cols * elem;
      const info: TensorInfo = { name, dtype: src.info.dtype, shape: [slice.rows, cols], begin, end };
      // The same bytes, a tensor table holding only the slice (the loader looks tensors up by name).
      out = { file: { ...src.file, tensors: new Map([[name, info]]) }, info };
    }
    made.set(name, out);
    return out;
  };
  const partsOf = (source: string) => [...slices].filter(([, s]) => s.source === source).map(([part]) => part);
  return {
    ...files,
    tensor,
    tensorNames: () => files.tensorNames().flatMap((n) => (fused.has(n) ? partsOf(n) : [n])),
  };
}

/**
 * Multipliers folded into tensors at load (uploadWeights' `scales`), so the forward needs no kernel
 * of its own for them. MiniCPM3's muP: h += rs · o_proj(a) and h += rs · down_proj(m) with
 * rs = scale_depth / sqrt(layers), so o_proj and down_proj load times rs; the LM head reads
 * norm(h) · dim_model_base / hidden, so model.norm.weight loads times that (RMSNorm's output is
 * linear in its weight). e.g. MiniCPM3-4B: o_proj, down_proj × 1.4 / sqrt(62) = 0.1778; norm × 0.1.
 */
export function loadScales(spec: ModelSpec): Map<string, number> {
  const m = new Map<string, number>();
  if (spec.residualScale !== 1) {
    for (let l = 0; l < spec.numLayers; l++) {
      m.set(`model.layers.${l}.self_attn.o_proj.weight`, spec.residualScale);
      m.set(`model.layers.${l}.mlp.down_proj.weight`, spec.residualScale);
    }
  }
  if (spec.logitScale !== 1) {
    if (spec.normWeightPlusOne) throw new RangeError('loadScales: a logit scale cannot fold into a (1 + w) norm');
    m.set('model.norm.weight', spec.logitScale);
  }
  return m;
}

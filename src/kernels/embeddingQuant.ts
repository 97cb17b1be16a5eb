/**
 * embeddingQuant wrapper: the embedding gather over a table of GGUF blocks (q8 = Q8_0, q4 = Q4_0,
 * q5_0, q4_K, q6_K), dequantized in registers, times a scale; an id >= vocab gives a row of NaN.
 * Same bind arguments as Embedding (embedding.ts), so createEmbedding picks either by table dtype.
 * Never submits.
 *   ids     u32 [numTokens]
 *   table   GGUF blocks of [vocab][dim], quantBufferBytes(dtype, vocab, dim) (weights.ts uploads them)
 *   out     f32 [numTokens][dim]
 *   params  uniform { numTokens u32 } (embeddingParams)
 * Grid: numTokens * dim / 16 lanes (one per 16-value unit) in workgroups of 64, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { DTYPES, isQuantDtype, type MatrixDtype, type QuantDtype } from '../gpu/dtype';
import { ShapeError } from '../gpu/errors';
import { Embedding, type EmbeddingArgs, type EmbeddingSpec } from './embedding';
import { checkBindingSize, Kernel, type Grid } from './kernel';
import { quantBufferBytes, quantKernelSource } from './matmulQuant';
import embeddingQuantWgsl from '../../shaders/model/embeddingQuant.wgsl?raw';

export interface QuantEmbeddingSpec {
  vocab: number;
  /** Row width (hidden size), a multiple of the format's block (32; 256 for q4_K / q6_K). */
  dim: number;
  tableDtype: QuantDtype;
  /** Multiplier on every value (gemma: sqrt(hidden)); default 1. */
  scale?: number;
}

export class QuantEmbedding extends Kernel<EmbeddingArgs> {
  private constructor(
    ctx: GpuContext,
    pipeline: GPUComputePipeline,
    readonly spec: QuantEmbeddingSpec,
  ) {
    super({ ctx, name: 'embeddingQuant', pipeline, bindings: { ids: 0, table: 1, out: 2, params: 3 }, unit: 'tokens' });
  }

  static async create(ctx: GpuContext, spec: QuantEmbeddingSpec): Promise<QuantEmbedding> {
    const { vocab, dim, tableDtype } = spec;
    const scale = spec.scale ?? 1;
    if (!isQuantDtype(tableDtype)) throw new ShapeError(`embeddingQuant: ${String(tableDtype)} is not a block format`);
    const bv = DTYPES[tableDtype].blockValues;
    if (!Number.isInteger(vocab) || vocab < 1 || !Number.isInteger(dim) || dim < bv || dim % bv !== 0) {
      throw new ShapeError(`embeddingQuant: vocab ${vocab} x dim ${dim}: dim must be a positive multiple of ${bv}`);
    }
    if (!Number.isFinite(scale)) throw new ShapeError(`embeddingQuant: scale must be finite, got ${scale}`);
    checkBindingSize(
      ctx,
      'embeddingQuant',
      `table [${vocab}, ${dim}] ${tableDtype}`,
      quantBufferBytes(tableDtype, vocab, dim),
    );
    const src = quantKernelSource(
      'embeddingQuant',
      'shaders/model/embeddingQuant.wgsl',
      embeddingQuantWgsl,
      tableDtype,
    );
    const pipeline = await Kernel.compile(ctx, 'embeddingQuant', src, { DIM: dim, VOCAB: vocab, SCALE: scale });
    return new QuantEmbedding(ctx, pipeline, spec);
  }

  bind(b: EmbeddingArgs): GPUBindGroup {
    const { vocab, dim, tableDtype } = this.spec;
    this.need(
      'table',
      b.table,
      quantBufferBytes(tableDtype, vocab, dim),
      `${vocab} x ${dim} ${tableDtype} (+ a pad word)`,
    );
    this.need('params', b.params, 4, '{ numTokens u32 }');
    return this.bindGroup({ ...b }, Math.min(Math.floor(b.ids.size / 4), Math.floor(b.out.size / (dim * 4))));
  }

  grid(numTokens: number): Grid {
    return this.grid1D((numTokens * this.spec.dim) / 16, 64);
  }
}

/** The gather for a table of any matrix dtype: Embedding (f32 / f16) or QuantEmbedding (GGUF blocks). */
export function createEmbedding(
  ctx: GpuContext,
  spec: Omit<EmbeddingSpec, 'tableDtype'> & { tableDtype: MatrixDtype },
): Promise<Embedding | QuantEmbedding> {
  const { tableDtype } = spec;
  return isQuantDtype(tableDtype)
    ? QuantEmbedding.create(ctx, { ...spec, tableDtype })
    : Embedding.create(ctx, { ...spec, tableDtype });
}

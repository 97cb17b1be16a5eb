/**
 * embeddingQuant wrapper: the embedding gather over a table of GGUF blocks (q8 = Q8_0, q4 = Q4_0,
 * q5_0, q4_K, q6_K), dequantized in registers, times a scale; an id >= vocab gives a row of NaN.
 * Same bind arguments as Embedding (embedding.ts), so createEmbedding picks either by table dtype.
 * Never submits.
 *   ids     u32 [numTokens]
 *   table   GGUF blocks of [vocab][dim] in packed rows (quantLayout.ts), quantBufferBytes(dtype, vocab, dim)
 *           (weights.ts uploads them), bound twice (as vec4<u32> and as u32 words):
 *           one buffer, or its row shards (rowShards.ts; one dispatch per shard, as Embedding)
 *   out     f32 [numTokens][dim]
 *   params  uniform { numTokens u32 } (embeddingParams)
 * Grid: numTokens * dim / 16 lanes (one per 16-value unit) in workgroups of 64, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { DTYPES, isQuantDtype, type MatrixDtype, type QuantDtype } from '../gpu/dtype';
import { ShapeError } from '../gpu/errors';
import { Embedding, EMBEDDING_BINDINGS, type EmbeddingArgs, type EmbeddingSpec } from './embedding';
import { Kernel, type Grid } from './kernel';
import { quantBufferBytes, quantKernelSource } from './matmulQuant';
import { createShardRange, RowShardedKernel } from './rowShards';
import embeddingQuantWgsl from '../../shaders/model/embeddingQuant.wgsl?raw';

export interface QuantEmbeddingSpec {
  vocab: number;
  /** Row width (hidden size), a multiple of the format's block (32; 256 for q4_K / q6_K). */
  dim: number;
  tableDtype: QuantDtype;
  /** Multiplier on every value (gemma: sqrt(hidden)); default 1. */
  scale?: number;
}

export class QuantEmbedding extends RowShardedKernel<EmbeddingArgs> {
  private constructor(
    ctx: GpuContext,
    pipeline: GPUComputePipeline,
    readonly spec: QuantEmbeddingSpec,
    /** The range of an unsplit table: rows 0..vocab - 1. */
    private readonly wholeRange: GPUBuffer,
  ) {
    const bindings = { ...EMBEDDING_BINDINGS, tableWords: 5 }; // the table again, as u32 words
    const init = { ctx, name: 'embeddingQuant', pipeline, bindings, unit: 'tokens' };
    super({ ...init, owned: [wholeRange] });
  }

  protected get matrixRows(): number {
    return this.spec.vocab;
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
    const src = quantKernelSource(
      'embeddingQuant',
      'shaders/model/embeddingQuant.wgsl',
      embeddingQuantWgsl,
      tableDtype,
    );
    const pipeline = await Kernel.compile(ctx, 'embeddingQuant', src, { DIM: dim, VOCAB: vocab, SCALE: scale });
    return new QuantEmbedding(ctx, pipeline, spec, await createShardRange(ctx, 'embeddingQuant.wholeRange', 0, vocab));
  }

  bind(b: EmbeddingArgs): GPUBindGroup {
    const { dim, tableDtype } = this.spec;
    const shards = this.shardsOf(
      'table',
      b.table,
      this.wholeRange,
      (rows) => quantBufferBytes(tableDtype, rows, dim),
      (rows) => `${rows} x ${dim} ${tableDtype} in packed rows`,
    );
    this.need('params', b.params, 4, '{ numTokens u32 }');
    const tokens = Math.min(Math.floor(b.ids.size / 4), Math.floor(b.out.size / (dim * 4)));
    return this.bindShards(shards, (s) => ({ ...b, table: s.buffer, tableWords: s.buffer, shard: s.range }), tokens);
  }

  /** Every shard runs every token (and skips the ids it does not hold). */
  protected gridRows(numTokens: number): Grid {
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

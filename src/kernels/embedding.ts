/**
 * embedding wrapper: gather rows of the embedding table for token ids, times a scale (gemma:
 * sqrt(hidden); 1 otherwise). An id >= vocab gives a row of NaN (never another tensor's bytes).
 * Never submits.
 *
 * The table may be split by rows across buffers (rowShards.ts): one dispatch per shard, each
 * writing the tokens whose ids it holds.
 *
 * Bind arguments (numTokens is a runtime count, in the params uniform):
 *   ids     u32 [numTokens]
 *   table   [vocab][dim] f32, or f16 bit patterns two per u32 word (tableDtype), as weights.ts
 *           uploads: one buffer, or its row shards
 *   out     f32 [numTokens][dim]
 *   params  uniform { numTokens u32 } (16 bytes; embeddingParams)
 * Grid: numTokens * dim threads in workgroups of 64, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { isWeightDtype, type WeightDtype } from '../gpu/dtype';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource } from './sources';
import { createShardRange, RowShardedKernel, type MatrixBuffers } from './rowShards';

export interface EmbeddingSpec {
  vocab: number;
  /** Row width (hidden size). */
  dim: number;
  tableDtype: WeightDtype;
  /** Multiplier on every value (gemma: sqrt(hidden)); default 1. */
  scale?: number;
}

export interface EmbeddingArgs {
  ids: GPUBuffer;
  table: MatrixBuffers;
  out: GPUBuffer;
  params: GPUBuffer;
}

/** The params uniform's contents for `numTokens` tokens. */
export function embeddingParams(numTokens: number): Uint32Array {
  return new Uint32Array([numTokens, 0, 0, 0]);
}

/** Binding 4 (shard): the bound table shard's uniform { firstRow, rows } (rowShards.ts). */
export const EMBEDDING_BINDINGS = { ids: 0, table: 1, out: 2, params: 3, shard: 4 };

export class Embedding extends RowShardedKernel<EmbeddingArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: EmbeddingSpec,
    /** The range of an unsplit table: rows 0..vocab - 1. */
    private readonly wholeRange: GPUBuffer,
  ) {
    super(init);
  }

  protected get matrixRows(): number {
    return this.spec.vocab;
  }

  static async create(ctx: GpuContext, spec: EmbeddingSpec): Promise<Embedding> {
    const { vocab, dim } = spec;
    const scale = spec.scale ?? 1;
    if (!Number.isInteger(vocab) || vocab < 1 || !Number.isInteger(dim) || dim < 1) {
      throw new ShapeError(`embedding: vocab and dim must be positive integers, got ${vocab} x ${dim}`);
    }
    if (!isWeightDtype(spec.tableDtype)) {
      throw new ShapeError(`embedding: tableDtype must be f32 or f16, got ${spec.tableDtype}`);
    }
    if (!Number.isFinite(scale)) throw new ShapeError(`embedding: scale must be finite, got ${scale}`);
    const pipeline = await Kernel.compile(ctx, 'embedding', kernelSource('embedding'), {
      DIM: dim,
      VOCAB: vocab,
      TABLE_F16: spec.tableDtype === 'f16' ? 1 : 0,
      SCALE: scale,
    });
    const wholeRange = await createShardRange(ctx, 'embedding.wholeRange', 0, vocab);
    const init = {
      ctx,
      name: 'embedding',
      pipeline,
      bindings: EMBEDDING_BINDINGS,
      unit: 'tokens',
      owned: [wholeRange],
    };
    return new Embedding(init, spec, wholeRange);
  }

  /** See the file header for shapes. */
  bind(b: EmbeddingArgs): GPUBindGroup {
    const { dim, tableDtype } = this.spec;
    const shards = this.shardsOf(
      'table',
      b.table,
      this.wholeRange,
      (rows) => (tableDtype === 'f16' ? Math.ceil((rows * dim) / 2) * 4 : rows * dim * 4),
      (rows) => `${rows} x ${dim} ${tableDtype}`,
    );
    for (const s of shards) {
      if (s.rows * dim > 2 ** 32 - 1)
        throw new ShapeError(`embedding: ${s.rows} x ${dim} values overflow u32 indexing`);
    }
    this.need('params', b.params, 4, '{ numTokens u32 }');
    const tokens = Math.min(Math.floor(b.ids.size / 4), Math.floor(b.out.size / (dim * 4)));
    return this.bindShards(shards, (s) => ({ ...b, table: s.buffer, shard: s.range }), tokens);
  }

  /** Every shard runs every token (and skips the ids it does not hold). */
  protected gridRows(numTokens: number): Grid {
    return this.grid1D(numTokens * this.spec.dim, 64);
  }
}

/**
 * embedding wrapper: gather rows of the embedding table for token ids, times a scale (gemma:
 * sqrt(hidden); 1 otherwise). An id >= vocab gives a row of NaN (never another tensor's bytes).
 * Never submits.
 *
 * Bind arguments (numTokens is a runtime count, in the params uniform):
 *   ids     u32 [numTokens]
 *   table   [vocab][dim] f32, or f16 bit patterns two per u32 word (tableDtype), as weights.ts uploads
 *   out     f32 [numTokens][dim]
 *   params  uniform { numTokens u32 } (16 bytes; embeddingParams)
 * Grid: numTokens * dim threads in workgroups of 64, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { isWeightDtype, type WeightDtype } from '../gpu/dtype';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource } from './sources';

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
  table: GPUBuffer;
  out: GPUBuffer;
  params: GPUBuffer;
}

/** The params uniform's contents for `numTokens` tokens. */
export function embeddingParams(numTokens: number): Uint32Array {
  return new Uint32Array([numTokens, 0, 0, 0]);
}

export class Embedding extends Kernel<EmbeddingArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: EmbeddingSpec,
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: EmbeddingSpec): Promise<Embedding> {
    const { vocab, dim } = spec;
    const scale = spec.scale ?? 1;
    if (!Number.isInteger(vocab) || vocab < 1 || !Number.isInteger(dim) || dim < 1) {
      throw new ShapeError(`embedding: vocab and dim must be positive integers, got ${vocab} x ${dim}`);
    }
    if (vocab * dim > 2 ** 32 - 1) throw new ShapeError(`embedding: ${vocab} x ${dim} values overflow u32 indexing`);
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
    const bindings = { ids: 0, table: 1, out: 2, params: 3 };
    return new Embedding({ ctx, name: 'embedding', pipeline, bindings, unit: 'tokens' }, spec);
  }

  /** See the file header for shapes. */
  bind(b: EmbeddingArgs): GPUBindGroup {
    const { vocab, dim, tableDtype } = this.spec;
    const tableBytes = tableDtype === 'f16' ? Math.ceil((vocab * dim) / 2) * 4 : vocab * dim * 4;
    this.need('table', b.table, tableBytes, `${vocab} x ${dim} ${tableDtype}`);
    this.need('params', b.params, 4, '{ numTokens u32 }');
    return this.bindGroup({ ...b }, Math.min(Math.floor(b.ids.size / 4), Math.floor(b.out.size / (dim * 4))));
  }

  grid(numTokens: number): Grid {
    return this.grid1D(numTokens * this.spec.dim, 64);
  }
}

/**
 * embedding wrapper: gather rows of the embedding table for token ids, times a scale (gemma:
 * sqrt(hidden); 1 otherwise). An id >= vocab gives a row of NaN (never another tensor's bytes).
 * Never submits.
 *
 * Buffers (numTokens is a runtime count, in the params uniform):
 *   ids     u32 [numTokens]
 *   table   [vocab][dim] f32, or f16 bit patterns two per u32 word (tableDtype), as weights.ts uploads
 *   out     f32 [numTokens][dim]
 *   params  uniform { numTokens u32 } (16 bytes; embeddingParams)
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { bindBuffers, grid1D } from '../gpu/buffers';
import type { KernelSource } from '../gpu/pipelineCache';
import type { WeightDtype } from '../model/weights';
import embeddingWgsl from '../../shaders/model/embedding.wgsl?raw';

export interface EmbeddingSpec {
  vocab: number;
  /** Row width (hidden size). */
  dim: number;
  tableDtype: WeightDtype;
  /** Multiplier on every value (gemma: sqrt(hidden)); default 1. */
  scale?: number;
}

const source: KernelSource = { name: 'embedding', variant: 'plain', parts: [{ file: 'shaders/model/embedding.wgsl', code: embeddingWgsl }] };

/** The params uniform's contents for `numTokens` tokens. */
export function embeddingParams(numTokens: number): Uint32Array {
  return new Uint32Array([numTokens, 0, 0, 0]);
}

export class Embedding {
  private readonly capacity = new WeakMap<GPUBindGroup, number>();

  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: EmbeddingSpec,
    readonly pipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext, spec: EmbeddingSpec): Promise<Embedding> {
    const { vocab, dim } = spec;
    const scale = spec.scale ?? 1;
    if (!Number.isInteger(vocab) || vocab < 1 || !Number.isInteger(dim) || dim < 1) {
      throw new ShapeError(`embedding: vocab and dim must be positive integers, got ${vocab} x ${dim}`);
    }
    if (vocab * dim > 2 ** 32 - 1) throw new ShapeError(`embedding: ${vocab} x ${dim} values overflow u32 indexing`);
    if (spec.tableDtype !== 'f32' && spec.tableDtype !== 'f16') throw new ShapeError(`embedding: tableDtype must be f32 or f16, got ${spec.tableDtype}`);
    if (!Number.isFinite(scale)) throw new ShapeError(`embedding: scale must be finite, got ${scale}`);
    const pipeline = await ctx.pipelines.get(source, {
      DIM: dim,
      VOCAB: vocab,
      TABLE_F16: spec.tableDtype === 'f16' ? 1 : 0,
      SCALE: scale,
    });
    return new Embedding(ctx, spec, pipeline);
  }

  /** See the file header for shapes. */
  bind(b: { ids: GPUBuffer; table: GPUBuffer; out: GPUBuffer; params: GPUBuffer }): GPUBindGroup {
    const { vocab, dim, tableDtype } = this.spec;
    const tableBytes = tableDtype === 'f16' ? Math.ceil((vocab * dim) / 2) * 4 : vocab * dim * 4;
    if (b.table.size < tableBytes) throw new ShapeError(`embedding: table holds ${b.table.size} bytes, needs ${tableBytes} (${vocab} x ${dim} ${tableDtype})`);
    if (b.params.size < 4) throw new ShapeError('embedding: params must hold { numTokens u32 }');
    const group = bindBuffers(this.ctx, this.pipeline, 'embedding.bindGroup', { 0: b.ids, 1: b.table, 2: b.out, 3: b.params });
    this.capacity.set(group, Math.min(Math.floor(b.ids.size / 4), Math.floor(b.out.size / (dim * 4))));
    return group;
  }

  /** `numTokens` must equal the params uniform's numTokens; 0 encodes nothing. */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numTokens: number): void {
    if (!Number.isInteger(numTokens) || numTokens < 0) throw new ShapeError(`embedding: numTokens must be an integer >= 0, got ${numTokens}`);
    const capacity = this.capacity.get(bindGroup) ?? 0;
    if (numTokens > capacity) throw new ShapeError(`embedding: ${numTokens} tokens but the bound buffers hold ${capacity}`);
    if (numTokens === 0) return;
    const [x, y] = grid1D(this.ctx, numTokens * this.spec.dim, 64);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}

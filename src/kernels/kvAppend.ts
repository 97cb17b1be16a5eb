/** kvAppend wrapper: scatter new tokens' K and V rows into their page slots. */
import type { GpuContext } from '../gpu/context';
import { bindBuffers, grid1D, STORAGE } from '../gpu/buffers';
import type { AttentionSpec, PagedKvBuffers } from './pagedAttention';
import { checkSpec } from './pagedAttention';
import { kvStorage, pagedKernelSource } from './sources';

export class KvAppend {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: AttentionSpec,
    readonly pipeline: GPUComputePipeline,
    /** MLA: bound in place of vPages, which the kernel then never touches (newV is bound to newK). */
    private readonly placeholder: GPUBuffer | undefined,
  ) {}

  static async create(ctx: GpuContext, spec: AttentionSpec): Promise<KvAppend> {
    checkSpec(spec);
    const pipeline = await ctx.pipelines.get(pagedKernelSource('kvAppend', kvStorage(ctx, spec.kvDtype)), {
      NUM_KV_HEADS: spec.numKvHeads,
      HEAD_DIM_QK: spec.headDimQK,
      HEAD_DIM_V: spec.headDimV,
      PAGE_SIZE: spec.pageSize,
      APPEND_V: spec.vAliasesK ? 0 : 1,
    });
    const placeholder = spec.vAliasesK ? await ctx.createBuffer('kvAppend.noV', 16, STORAGE) : undefined;
    return new KvAppend(ctx, spec, pipeline, placeholder);
  }

  /**
   * newK f32 [numTokens][numKvHeads][headDimQK], newV f32 [numTokens][numKvHeads][headDimV],
   * slotMapping i32 [numTokens] (page * pageSize + offset; -1 skips), params uniform { numTokens u32 }.
   * MLA (vAliasesK): newK is the latent rows [numTokens][1][headDimQK]; newV is ignored.
   */
  bind(newK: GPUBuffer, newV: GPUBuffer | undefined, slotMapping: GPUBuffer, kv: PagedKvBuffers, params: GPUBuffer): GPUBindGroup {
    return bindBuffers(this.ctx, this.pipeline, 'kvAppend.bindGroup', {
      0: newK,
      1: this.placeholder ? newK : newV!,
      2: slotMapping,
      3: kv.kPages,
      4: this.placeholder ?? kv.vPages,
      5: params,
    });
  }

  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numTokens: number): void {
    if (numTokens === 0) return;
    const cols = (this.spec.vAliasesK ? this.spec.headDimQK : Math.max(this.spec.headDimQK, this.spec.headDimV)) / 4;
    const [x, y] = grid1D(this.ctx, numTokens * this.spec.numKvHeads * cols, 64);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }
}

/**
 * kvAppend wrapper: scatter new tokens' K and V rows into their page slots.
 *
 * Bind arguments:
 *   newK         f32 [numTokens][numKvHeads][headDimQK]
 *   newV         f32 [numTokens][numKvHeads][headDimV]   (not given for MLA, vAliasesK)
 *   slotMapping  i32 [numTokens]   page * pageSize + offset; -1 skips
 *   pages        the layer's K and V pages (MLA: vPages is kPages and is not written)
 *   params       uniform { numTokens u32 }
 * MLA (vAliasesK): newK is the latent rows [numTokens][1][headDimQK].
 * q8 / q4 pages are quantised on write (shaders/kv/kvAppendQuant.wgsl).
 * A pool split across buffers (pages.kMore) is written one buffer per dispatch: bind() makes a bind
 * group per buffer, each with that buffer as kPages / vPages and its page range (binding 6,
 * shaders/kv/kvPagesWriteRange.wgsl), and encode() dispatches them all; each dispatch skips the
 * slots the other buffers hold. So the kernel is the same for one buffer and a split pool, binds
 * 5 storage buffers either way, and indexes within one buffer.
 * Grid: numTokens * numKvHeads * (vec4 columns; q8 / q4: scale groups) threads in workgroups of 64,
 * folded into (x, y), per buffer.
 */
import type { GpuContext } from '../gpu/context';
import { UNIFORM, uploadBuffer } from '../gpu/buffers';
import { ShapeError } from '../gpu/errors';
import { isKvQuantDtype, kvScalesPerRow } from '../gpu/dtype';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { checkSpec, isSplit, KV_SPLIT_MAX_BUFFERS, type AttentionSpec, type PagedKvBuffers } from './pagedAttention';
import { kernelSource, kvWord4Format } from './sources';

export interface KvAppendArgs {
  newK: GPUBuffer;
  newV?: GPUBuffer;
  slotMapping: GPUBuffer;
  pages: PagedKvBuffers;
  params: GPUBuffer;
}

const BINDINGS = { newK: 0, newV: 1, slotMapping: 2, kPages: 3, vPages: 4, params: 5, pageRange: 6 };

export class KvAppend extends Kernel<KvAppendArgs> {
  /** A split pool's bind groups of buffers 1.., by the bind group of buffer 0 that bind() returns. */
  private readonly moreGroups = new WeakMap<GPUBindGroup, GPUBindGroup[]>();

  private constructor(
    init: KernelInit,
    readonly spec: AttentionSpec,
    /** MLA: bound in place of vPages, which the kernel then never touches (newV is bound to newK). */
    private readonly placeholder: GPUBuffer | undefined,
    /**
     * uniform { firstPage, numPages } of each buffer the kernel writes: one buffer (0, every page),
     * or buffer b of a split pool (b * pagesPerBuffer, pagesPerBuffer), b < 4.
     */
    private readonly pageRanges: readonly GPUBuffer[],
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: AttentionSpec): Promise<KvAppend> {
    checkSpec(spec);
    // q8 / q4: quantise on write (kvAppendQuant.wgsl); f32 / f16: store the values through Word4.
    const quant = isKvQuantDtype(spec.kvDtype);
    const source = quant
      ? kernelSource('kvAppendQuant')
      : kernelSource('kvAppend', { word: kvWord4Format(ctx, spec.kvDtype) });
    const pipeline = await Kernel.compile(ctx, 'kvAppend', source, {
      NUM_KV_HEADS: spec.numKvHeads,
      HEAD_DIM_QK: spec.headDimQK,
      HEAD_DIM_V: spec.headDimV,
      PAGE_SIZE: spec.pageSize,
      APPEND_V: spec.vAliasesK ? 0 : 1,
      ...(quant ? { KV_BITS: spec.kvDtype === 'q8' ? 8 : 4 } : {}),
    });
    const placeholder = spec.vAliasesK ? await Kernel.placeholder(ctx, 'kvAppend.noV') : undefined;
    const ppb = spec.pagesPerBuffer;
    const ranges = isSplit(spec)
      ? Array.from({ length: KV_SPLIT_MAX_BUFFERS }, (_, b) => [b * ppb!, ppb!])
      : [[0, 0xffffffff]];
    const pageRanges: GPUBuffer[] = [];
    for (const [b, range] of ranges.entries()) {
      const data = new Uint32Array([...range, 0, 0]);
      pageRanges.push(await uploadBuffer(ctx, `kvAppend.pageRange${b}`, data, UNIFORM));
    }
    const init = {
      ctx,
      name: 'kvAppend',
      pipeline,
      bindings: BINDINGS,
      unit: 'tokens',
      owned: [...(placeholder ? [placeholder] : []), ...pageRanges],
    };
    return new KvAppend(init, spec, placeholder, pageRanges);
  }

  /**
   * See the file header; capacity: the tokens slotMapping holds. A split pool: the bind group of
   * buffer 0, which encode() dispatches together with those of the pool's other buffers.
   */
  bind(b: KvAppendArgs): GPUBindGroup {
    if (!this.placeholder && !b.newV)
      throw new ShapeError('kvAppend: newV must be given (only MLA, vAliasesK, appends K alone)');
    if (isSplit(this.spec) !== !!b.pages.kMore) {
      throw new ShapeError(
        `kvAppend: made for a pool ${isSplit(this.spec) ? 'split across buffers' : 'of one buffer'}, ` +
          `given ${b.pages.kMore ? 'a split' : 'a one-buffer'} pool (make the kernel from the pool's spec)`,
      );
    }
    // Buffers 1..3 of a split pool; the slots past its last buffer repeat buffer 0 (KvPool).
    const kBuffers = [b.pages.kPages, ...(b.pages.kMore ?? []).filter((m) => m !== b.pages.kPages)];
    const vBuffers = [b.pages.vPages, ...(b.pages.vMore ?? b.pages.kMore ?? [])];
    const groups = kBuffers.map((kPages, i) =>
      this.bindGroup(
        {
          newK: b.newK,
          newV: this.placeholder ? b.newK : b.newV!,
          slotMapping: b.slotMapping,
          kPages,
          vPages: this.placeholder ?? vBuffers[i],
          params: b.params,
          pageRange: this.pageRanges[i],
        },
        Math.floor(b.slotMapping.size / 4),
      ),
    );
    if (groups.length > 1) this.moreGroups.set(groups[0], groups.slice(1));
    return groups[0];
  }

  /** Dispatches numTokens' appends into every buffer of the bound pool (one dispatch per buffer). */
  override encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, numTokens: number): void {
    for (const g of [bindGroup, ...(this.moreGroups.get(bindGroup) ?? [])]) super.encode(pass, g, numTokens);
  }

  grid(numTokens: number): Grid {
    const { headDimQK, headDimV, numKvHeads, vAliasesK, kvDtype } = this.spec;
    // Threads per (token, KV head): a vec4 column each (f32 / f16), a scale group each (q8 / q4).
    const per = (d: number) => (isKvQuantDtype(kvDtype) ? kvScalesPerRow(kvDtype, d) : d / 4);
    const cols = vAliasesK ? per(headDimQK) : Math.max(per(headDimQK), per(headDimV));
    return this.grid1D(numTokens * numKvHeads * cols, 64);
  }
}

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
 * Grid: numTokens * numKvHeads * (vec4 columns; q8 / q4: scale groups) threads in workgroups of 64,
 * folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { isKvQuantDtype, kvScalesPerRow } from '../gpu/dtype';
import { Kernel, type Grid, type KernelInit } from './kernel';
import {
  checkSpec,
  isSplit,
  splitBindings,
  splitBuffers,
  type AttentionSpec,
  type PagedKvBuffers,
} from './pagedAttention';
import { kernelSource, kvWord4Format } from './sources';

export interface KvAppendArgs {
  newK: GPUBuffer;
  newV?: GPUBuffer;
  slotMapping: GPUBuffer;
  pages: PagedKvBuffers;
  params: GPUBuffer;
}

const BINDINGS = { newK: 0, newV: 1, slotMapping: 2, kPages: 3, vPages: 4, params: 5 };

export class KvAppend extends Kernel<KvAppendArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: AttentionSpec,
    /** MLA: bound in place of vPages, which the kernel then never touches (newV is bound to newK). */
    private readonly placeholder: GPUBuffer | undefined,
    /**
     * A split pool: 6 distinct placeholders for the K / V slots 1..3 past the pool's last buffer
     * (WebGPU refuses one buffer in two writable bindings, so the padding cannot repeat buffer 0).
     */
    private readonly splitPlaceholders: readonly GPUBuffer[] = [],
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: AttentionSpec): Promise<KvAppend> {
    checkSpec(spec);
    // q8 / q4: quantise on write (kvAppendQuant.wgsl); f32 / f16: store the values through Word4.
    const quant = isKvQuantDtype(spec.kvDtype);
    // A split pool (pagesPerBuffer): the store snippet over 4 + 4 buffers (bindings 22..27 more).
    const split = isSplit(spec);
    const source = quant
      ? kernelSource('kvAppendQuant', { split })
      : kernelSource('kvAppend', { word: kvWord4Format(ctx, spec.kvDtype), split });
    const pipeline = await Kernel.compile(ctx, 'kvAppend', source, {
      NUM_KV_HEADS: spec.numKvHeads,
      HEAD_DIM_QK: spec.headDimQK,
      HEAD_DIM_V: spec.headDimV,
      PAGE_SIZE: spec.pageSize,
      APPEND_V: spec.vAliasesK ? 0 : 1,
      ...(quant ? { KV_BITS: spec.kvDtype === 'q8' ? 8 : 4 } : {}),
      ...(split ? { PAGES_PER_BUFFER: spec.pagesPerBuffer! } : {}),
    });
    const placeholder = spec.vAliasesK ? await Kernel.placeholder(ctx, 'kvAppend.noV') : undefined;
    const splitPlaceholders: GPUBuffer[] = [];
    for (let i = 0; split && i < 6; i++) splitPlaceholders.push(await Kernel.placeholder(ctx, `kvAppend.noBuffer${i}`));
    const init = {
      ctx,
      name: 'kvAppend',
      pipeline,
      bindings: { ...BINDINGS, ...splitBindings(spec, true) },
      unit: 'tokens',
      owned: [...(placeholder ? [placeholder] : []), ...splitPlaceholders],
    };
    return new KvAppend(init, spec, placeholder, splitPlaceholders);
  }

  /** See the file header; capacity: the tokens slotMapping holds. */
  bind(b: KvAppendArgs): GPUBindGroup {
    if (!this.placeholder && !b.newV)
      throw new ShapeError('kvAppend: newV must be given (only MLA, vAliasesK, appends K alone)');
    // A split pool: slots past its last buffer (KvPool repeats buffer 0 there) and, for MLA, every V
    // slot take distinct placeholders, never written.
    const free = [...this.splitPlaceholders];
    const distinct = (first: GPUBuffer, more: readonly GPUBuffer[], none: boolean) =>
      more.map((m) => (none || m === first ? free.pop()! : m));
    const pages = b.pages.kMore
      ? {
          ...b.pages,
          kMore: distinct(b.pages.kPages, b.pages.kMore, false),
          vMore: distinct(b.pages.vPages, b.pages.vMore ?? b.pages.kMore, !!this.placeholder),
        }
      : b.pages;
    return this.bindGroup(
      {
        ...splitBuffers(this.spec, pages),
        newK: b.newK,
        newV: this.placeholder ? b.newK : b.newV!,
        slotMapping: b.slotMapping,
        kPages: b.pages.kPages,
        vPages: this.placeholder ?? b.pages.vPages,
        params: b.params,
      },
      Math.floor(b.slotMapping.size / 4),
    );
  }

  grid(numTokens: number): Grid {
    const { headDimQK, headDimV, numKvHeads, vAliasesK, kvDtype } = this.spec;
    // Threads per (token, KV head): a vec4 column each (f32 / f16), a scale group each (q8 / q4).
    const per = (d: number) => (isKvQuantDtype(kvDtype) ? kvScalesPerRow(kvDtype, d) : d / 4);
    const cols = vAliasesK ? per(headDimQK) : Math.max(per(headDimQK), per(headDimV));
    return this.grid1D(numTokens * numKvHeads * cols, 64);
  }
}

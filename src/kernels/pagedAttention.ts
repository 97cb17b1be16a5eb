/**
 * What every paged attention kernel shares: the attention shape it is specialised for, the buffers
 * of a layer's KV pool and of a step's page table, and the uniform params block.
 */
import type { GpuContext } from '../gpu/context';
import { bindBuffers } from '../gpu/buffers';
import { ShapeError } from '../gpu/errors';
import type { KvDtype } from './sources';

export interface AttentionSpec {
  numKvHeads: number;
  /** Query heads per KV head: 1 = MHA, numHeads = MQA, in between = GQA. */
  groupSize: number;
  headDimQK: number;
  headDimV: number;
  pageSize: number;
  kvDtype: KvDtype;
  /**
   * MLA: the cache holds one latent row per token, [c_kv (headDimV) | k_pe], read as K (all of it)
   * and as V (its first headDimV values); vPages is the K buffer. Needs numKvHeads 1.
   */
  vAliasesK?: boolean;
}

/** One layer's KV pages: KVWord [numPages][numKvHeads][pageSize][headDim / 4] each. */
export interface PagedKvBuffers {
  kPages: GPUBuffer;
  vPages: GPUBuffer;
}

/** A step's page table (src/kv/pageTable.ts) and params uniform, shared by all layers. */
export interface StepBuffers {
  qoIndptr: GPUBuffer;
  kvIndptr: GPUBuffer;
  kvPageIndices: GPUBuffer;
  kvLastPageLen: GPUBuffer;
  /** Uniform, 16 bytes: see attentionParams(). */
  params: GPUBuffer;
}

export interface AttentionOptions {
  scale: number;
  causal: boolean;
  /** > 0: a query at position p sees keys in (p - window, p]. */
  window: number;
}

/** The pagedKv.wgsl `Params` block: numSeqs u32, scale f32, causal u32, window u32. */
export function attentionParams(numSeqs: number, o: AttentionOptions): ArrayBuffer {
  const buf = new ArrayBuffer(16);
  const view = new DataView(buf);
  view.setUint32(0, numSeqs, true);
  view.setFloat32(4, o.scale, true);
  view.setUint32(8, o.causal ? 1 : 0, true);
  view.setUint32(12, o.window, true);
  return buf;
}

export function checkSpec(s: AttentionSpec): void {
  const bad = (what: string) => {
    throw new ShapeError(`attention spec: ${what}`);
  };
  for (const k of ['numKvHeads', 'groupSize', 'headDimQK', 'headDimV', 'pageSize'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) bad(`${k} must be a positive integer (got ${s[k]})`);
  }
  if (s.headDimQK % 4 || s.headDimV % 4) bad(`head dims must be multiples of 4 (got ${s.headDimQK}, ${s.headDimV})`);
  if (s.kvDtype !== 'f32' && s.kvDtype !== 'f16') bad(`kvDtype must be f32 or f16 (got ${s.kvDtype})`);
  if (s.vAliasesK && (s.numKvHeads !== 1 || s.headDimV > s.headDimQK)) {
    bad(`MLA (V aliases K) needs numKvHeads 1 and headDimV <= headDimQK (got ${s.numKvHeads}, ${s.headDimV} > ${s.headDimQK})`);
  }
}

/** The constants every kernel composed with pagedKv.wgsl takes. */
export function pagedConstants(s: AttentionSpec): Record<string, number> {
  return {
    NUM_KV_HEADS: s.numKvHeads,
    GROUP_SIZE: s.groupSize,
    HEAD_DIM_QK: s.headDimQK,
    HEAD_DIM_V: s.headDimV,
    PAGE_SIZE: s.pageSize,
    ...(s.vAliasesK ? { V_ROW4: s.headDimQK / 4 } : {}),
  };
}

/** Words per work item: seq, rowStart, kvStart, kvEnd, slot (attentionTile.wgsl WorkItem). */
export const WORK_ITEM_U32 = 5;

/**
 * Bind group of a work-list attention kernel (flashPrefill, splitKvDecode): bindings 0..8 are the
 * pagedKv.wgsl / work-list ones, 9 and 10 the kernel's two outputs (out + lse, or partialO + partialML).
 */
export function bindWorkListKernel(
  ctx: GpuContext,
  pipeline: GPUComputePipeline,
  label: string,
  q: GPUBuffer,
  kv: PagedKvBuffers,
  step: StepBuffers,
  work: GPUBuffer,
  out0: GPUBuffer,
  out1: GPUBuffer,
): GPUBindGroup {
  return bindBuffers(ctx, pipeline, label, {
    0: q,
    1: kv.kPages,
    2: kv.vPages,
    3: step.qoIndptr,
    4: step.kvIndptr,
    5: step.kvPageIndices,
    6: step.kvLastPageLen,
    7: work,
    8: step.params,
    9: out0,
    10: out1,
  });
}

/** Dispatches a work-list kernel: one workgroup per (work item, KV head). */
export function encodeWorkListKernel(
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  bindGroup: GPUBindGroup,
  numWorkItems: number,
  numKvHeads: number,
): void {
  if (numWorkItems === 0) return;
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(numWorkItems, numKvHeads);
}

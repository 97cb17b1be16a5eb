/**
 * webattn/kernels: the paged attention kernels alone, for WebGPU code that already has its own
 * device and buffers. Re-exports only; importing it runs nothing.
 *
 *   import { contextFromDevice, FlashPrefill, buildPageTable } from 'webattn/kernels';
 *   const ctx = contextFromDevice(myDevice);          // wraps your GPUDevice (no new device)
 *   const prefill = await FlashPrefill.create(ctx, { numKvHeads: 2, groupSize: 4, headDimQK: 64,
 *     headDimV: 64, pageSize: 16, kvDtype: 'f32' });
 *   const meta = buildPageTable([{ blockTable: [3, 0], kvLen: 20, qLen: 20 }], 16);
 *   const plan = prefill.plan(meta);                  // upload meta.* and plan.work into your buffers
 *   const pages = { kPages, vPages };
 *   const bindGroup = prefill.bind({ q, pages, step: stepBuffers, work: workBuffer, out, lse });
 *   prefill.encode(pass, bindGroup, plan.numWorkItems);   // in your compute pass
 *
 * Buffer layouts (all little-endian, every buffer a STORAGE buffer unless said otherwise):
 *   q             f32 [numQueryTokens][numHeads][headDimQK], rows in sequence order (qoIndptr)
 *   kPages        [numPages][numKvHeads][pageSize][headDimQK] of the KV dtype (f32, or f16 as
 *   vPages        [numPages][numKvHeads][pageSize][headDimV]   plain 2-byte halves: the same bytes
 *                 with or without `shader-f16`)
 *   qoIndptr      u32 [numSeqs + 1]  query rows of sequence i: qoIndptr[i] .. qoIndptr[i+1]
 *   kvIndptr      u32 [numSeqs + 1]  its pages: kvPageIndices[kvIndptr[i] .. kvIndptr[i+1]]
 *   kvPageIndices u32 [total pages]  physical page of each logical page, in order
 *   kvLastPageLen u32 [numSeqs]      tokens in the last page, 1..pageSize
 *   params        UNIFORM, 16 bytes: attentionParams(numSeqs, { scale, causal, window })
 *   work          u32 [numItems][WORK_ITEM_U32] from plan(meta).work (never written by you)
 *   out           f32 [numQueryTokens][numHeads][headDimV];  lse f32 [numQueryTokens][numHeads]
 * The queries of sequence i are its last qLen positions (a prefill chunk, or one decode token).
 * Head h reads KV head floor(h / groupSize).
 *
 * @module webattn/kernels
 */

// Wrapping a device, errors
export { GpuContext, contextFromDevice, createContext } from '../gpu/context';
export type { ContextOptions, GpuFeatures } from '../gpu/context';
export {
  WebAttnError,
  NoWebGpuError,
  ShaderCompileError,
  DeviceLostError,
  OutOfMemoryError,
  ShapeError,
} from '../gpu/errors';

// Small buffer helpers (set-up and readback; none is needed in a step)
export { uploadBuffer, writeBuffer, readBuffer, readFloat32, STORAGE, UNIFORM } from '../gpu/buffers';

// The kernels: create (specialise), plan, bind, encode; the caller submits
export { FlashPrefill } from './flashPrefill';
export { SplitKvDecode } from './splitKvDecode';
export type { DecodePlan, SplitKvArgs } from './splitKvDecode';
export type { FlashPrefillArgs } from './flashPrefill';
export type { MergePartialsArgs } from './mergePartials';
export type { KvAppendArgs } from './kvAppend';
export { MergePartials } from './mergePartials';
export { KvAppend } from './kvAppend';
export { NaiveAttention } from './naiveAttention';
export type { NaivePlan, NaiveBinding, NaiveAttentionArgs } from './naiveAttention';
export { attentionParams, WORK_ITEM_U32 } from './pagedAttention';
export type {
  AttentionSpec,
  AttentionOptions,
  PagedKvBuffers,
  StepBuffers,
  WorkListArgs,
  WorkPlan,
} from './pagedAttention';
export type { KvDtype } from '../gpu/dtype';
export { Kernel } from './kernel';
export type { Grid, KernelInit } from './kernel';

// Page table metadata (host side) and page sizes
export { buildPageTable } from './pageTable';
export type { PageTableSequence, PageTableMetadata } from './pageTable';
export type { StepBatch } from './stepBatch';
export { pageBufferBytes, maxPagesPerLayer } from './kvPool';

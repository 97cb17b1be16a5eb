/**
 * The preallocated buffers of one model's forward step, sized once at load for maxTokens, maxSeqs,
 * maxLogitRows and maxContext, so a step creates no GPU object. Shapes are in the comments.
 */
import type { TransformerOptions } from './transformerOptions';
import { projSpecs, vectorDtype, type Kernels, type Proj } from './modelKernels';
import type { GpuContext } from '../gpu/context';
import { MAP_READ_COPY_DST, STORAGE, UNIFORM, writeBuffer } from '../gpu/buffers';
import { WORK_ITEM_U32, type AttentionSpec, type StepBuffers } from '../kernels/pagedAttention';
import type { ModelSpec } from './config';
import { ropeFrequencyTable } from './ropeFrequencies';
import type { AnyMatmulSpec } from '../kernels/matmulQuant';
import { MlaAttention } from './mlaAttention';

export interface Buffers {
  ids: GPUBuffer; // u32 [maxTokens]
  positions: GPUBuffer; // u32 [maxTokens]
  slots: GPUBuffer; // i32 [maxTokens]
  lastRows: GPUBuffer; // u32 [maxLogitRows]: rows whose logits the step returns
  h: GPUBuffer; // f32 [maxTokens][hidden]: the residual stream
  xn: GPUBuffer; // f32 [maxTokens][hidden]: normalised h
  q: GPUBuffer; // f32 [maxTokens][H][D]: the attention query (MLA: [q_lat | q_pe], D = C + R)
  k?: GPUBuffer; // f32 [maxTokens][Hkv][D] (not MLA)
  v?: GPUBuffer; // f32 [maxTokens][Hkv][Dv] (not MLA)
  attn: GPUBuffer; // f32 [maxTokens][H][Dv]: the attention output (MLA: o_lat, Dv = C)
  /** MLA: its kernels and buffers (q projection, latent rows, per-head outputs). */
  mla?: MlaAttention;
  lse: GPUBuffer; // f32 [maxTokens][H]: flashPrefill writes it; the model does not need it
  sub: GPUBuffer; // f32 [maxTokens][hidden]: o_proj / down_proj output before the residual add
  gate: GPUBuffer; // f32 [maxTokens][I]
  up: GPUBuffer; // f32 [maxTokens][I]
  act: GPUBuffer; // f32 [maxTokens][I]
  last: GPUBuffer; // f32 [maxLogitRows][hidden]: final-normed rows whose logits are wanted
  logits: GPUBuffer; // f32 [maxLogitRows][vocab]
  logitsReadback: GPUBuffer; // f32 [maxLogitRows][vocab], MAP_READ: the step's only readback
  invFreq: GPUBuffer; // f32 [rotaryDim / 2] (LongRoPE: [2][rotaryDim / 2], short then long)
  invFreqLocal?: GPUBuffer; // f32 [rotaryDim / 2]: gemma3's local RoPE
  work: GPUBuffer; // WorkItem [max(prefill tiles, decode items)]
  step: StepBuffers;
  /** Sliding layers: the same page table with their own params uniform (the window); absent when none slides. */
  stepSliding?: StepBuffers;
  /**
   * Sliding layers bound to their own pool: its slots, page indices (the rest of the page table and
   * the window's params are stepSliding's) and copy-on-write pairs; absent when none slides.
   */
  localGroup?: { slots: GPUBuffer; step: StepBuffers; copyPairs: GPUBuffer; copyCount: GPUBuffer };
  partialO: GPUBuffer; // f32 [maxSlots][H][Dv]: split-KV decode partial outputs
  partialML: GPUBuffer; // vec2<f32> [maxSlots][H]: their running max and sum
  slotIndptr: GPUBuffer; // u32 [maxSeqs + 1]: partial slots of each sequence
  maxSlots: number;
  copyPairs: GPUBuffer; // vec2<u32> [maxSeqs]: copy-on-write (src page, dst page)
  copyCount: GPUBuffer; // uniform { numPairs }
  tokens: GPUBuffer; // uniform { T }
  qHeadRows: GPUBuffer; // uniform { T * H }
  kHeadRows: GPUBuffer; // uniform { T * Hkv }
  lastTokens: GPUBuffer; // uniform { numSeqs }
  projSpecs: Partial<Record<Proj, AnyMatmulSpec>>;
  projParams: Partial<Record<Proj, GPUBuffer>>; // uniform { M, N, K, hasBias } per projection
}

export async function createBuffers(
  ctx: GpuContext,
  spec: ModelSpec,
  attn: AttentionSpec,
  opts: Required<TransformerOptions>,
  k: Kernels,
  owned: { destroy(): void }[],
): Promise<Buffers> {
  const M = opts.maxTokens;
  const S = opts.maxSeqs;
  const make = async (label: string, bytes: number, usage = STORAGE) => {
    const buf = await ctx.createBuffer(`model.${label}`, bytes, usage);
    owned.push(buf);
    return buf;
  };
  const f32 = (label: string, n: number) => make(label, 4 * n);
  const uniform = (label: string) => make(label, 16, UNIFORM);
  const maxTiles = S + Math.ceil((M * attn.groupSize) / k.prefill.tiles.blockM);
  const decodeMax = k.decode.maxPlan(S, opts.maxContext);
  const partial = k.decode.partialBytes(decodeMax.slots);
  const pagesPerSeq = Math.ceil(opts.maxContext / opts.pageSize);
  const freqTable = ropeFrequencyTable(spec);
  const invFreq = await f32('invFreq', freqTable.length);
  writeBuffer(ctx, invFreq, freqTable);
  let invFreqLocal: GPUBuffer | undefined;
  if (spec.localRope) {
    const localTable = ropeFrequencyTable({ rope: spec.localRope });
    invFreqLocal = await f32('invFreqLocal', localTable.length);
    writeBuffer(ctx, invFreqLocal, localTable);
  }
  const specs = projSpecs(spec, opts.weightDtype);
  const projParams: Partial<Record<Proj, GPUBuffer>> = {};
  for (const role of Object.keys(specs) as Proj[]) projParams[role] = await uniform(`params.${role}`);
  const step: StepBuffers = {
    qoIndptr: await f32('qoIndptr', S + 1),
    kvIndptr: await f32('kvIndptr', S + 1),
    kvPageIndices: await f32('kvPageIndices', S * pagesPerSeq),
    kvLastPageLen: await f32('kvLastPageLen', S),
    params: await uniform('attentionParams'),
  };
  const anySliding = spec.slidingWindow !== null && spec.layers.some((l) => l.sliding);
  const stepSliding = anySliding ? { ...step, params: await uniform('attentionParams.sliding') } : undefined;
  const localGroup = stepSliding && {
    slots: await f32('local.slots', M),
    step: { ...stepSliding, kvPageIndices: await f32('local.kvPageIndices', S * pagesPerSeq) },
    copyPairs: await f32('local.copyPairs', 2 * S),
    copyCount: await uniform('local.copyCount'),
  };
  return {
    ids: await f32('ids', M),
    positions: await f32('positions', M),
    slots: await f32('slots', M),
    lastRows: await f32('lastRows', opts.maxLogitRows),
    h: await f32('h', M * spec.hiddenSize),
    xn: await f32('xn', M * spec.hiddenSize),
    q: await f32('q', M * spec.numHeads * attn.headDimQK),
    k: spec.mla ? undefined : await f32('k', M * spec.numKvHeads * spec.headDim),
    v: spec.mla ? undefined : await f32('v', M * spec.numKvHeads * spec.headDimV),
    attn: await f32('attn', M * spec.numHeads * attn.headDimV),
    mla: spec.mla ? await MlaAttention.create(ctx, spec, vectorDtype(opts.weightDtype), M, f32) : undefined,
    lse: await f32('lse', M * spec.numHeads),
    sub: await f32('sub', M * spec.hiddenSize),
    gate: await f32('gate', M * spec.intermediateSize),
    up: await f32('up', M * spec.intermediateSize),
    act: await f32('act', M * spec.intermediateSize),
    last: await f32('last', opts.maxLogitRows * spec.hiddenSize),
    logits: await f32('logits', opts.maxLogitRows * spec.vocabSize),
    logitsReadback: await make('logitsReadback', 4 * opts.maxLogitRows * spec.vocabSize, MAP_READ_COPY_DST),
    invFreq,
    invFreqLocal,
    work: await make('work', 4 * WORK_ITEM_U32 * Math.max(maxTiles, decodeMax.workItems)),
    step,
    stepSliding,
    localGroup,
    partialO: await make('partialO', partial.o),
    partialML: await make('partialML', partial.ml),
    slotIndptr: await f32('slotIndptr', S + 1),
    maxSlots: decodeMax.slots,
    copyPairs: await f32('copyPairs', 2 * S),
    copyCount: await uniform('copyCount'),
    tokens: await uniform('tokens'),
    qHeadRows: await uniform('qHeadRows'),
    kHeadRows: await uniform('kHeadRows'),
    lastTokens: await uniform('lastTokens'),
    projSpecs: specs,
    projParams,
  };
}

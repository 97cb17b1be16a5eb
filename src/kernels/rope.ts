/**
 * rope wrapper: rotary position embedding in place on q and k rows for each token's position.
 * Frequencies come from the host (`invFreq`, f32 [rotaryDim / 2], e.g. ropeInvFrequencies(spec)
 * from src/model/ropeFrequencies.ts, so default / linear / llama3 / yarn scaling is all there) and
 * `attentionFactor` (yarn's mscale; 1 otherwise) multiplies cos and sin. Never submits.
 *
 * Bind arguments (numTokens is a runtime count, in the params uniform):
 *   q          f32 [numTokens][q.tokenStride]   q.heads heads of q.headStride values, rotated in place
 *   k          f32 [numTokens][k.tokenStride]   same for k (omit spec.k for a single operand)
 *   positions  u32 [numTokens]                   position of each token
 *   invFreq    f32 [rotaryDim / 2]; with spec.longFrom (LongRoPE) [2][rotaryDim / 2]: the short
 *              table, then the long one, which positions >= longFrom read
 *   params     uniform { numTokens u32 } (16 bytes; ropeParams)
 * Each head rotates values offset .. offset + rotaryDim - 1, paired as (i, i + rotaryDim / 2)
 * (rotate-half: llama, qwen, gemma) or (2i, 2i + 1) (interleaved: DeepSeek).
 * Examples: llama q [T, 32, 128], k [T, 8, 128]: q { heads 32, headStride 128 }, k { heads 8,
 * headStride 128 }. A fused QKV row [T, (H + 2 Hkv) * D]: q { heads H + Hkv, headStride D,
 * tokenStride (H + 2 Hkv) * D } and no k (q and k heads are adjacent). DeepSeek MLA: q [T, H, 192]
 * with the rope part at 128: q { heads H, headStride 192, offset 128 }; the latent row [T, 576]
 * with k_pe at 512: k { heads 1, headStride 576, offset 512 }.
 * Grid: numTokens * (q.heads + k.heads) * rotaryDim / 2 threads (one per rotated pair) in
 * workgroups of 64, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource } from './sources';

/** Where the heads of one operand sit in its rows. */
export interface RopeOperand {
  heads: number;
  /** Values from one head to the next. */
  headStride: number;
  /** Values from one token to the next (default heads * headStride). */
  tokenStride?: number;
  /** First rotated value within a head (default 0); offset + rotaryDim <= headStride. */
  offset?: number;
}

export interface RopeSpec {
  /** Even, >= 2. */
  rotaryDim: number;
  /** true: pairs (2i, 2i + 1) (DeepSeek); false: pairs (i, i + rotaryDim / 2). */
  interleaved: boolean;
  /** Multiplier on cos and sin (yarn, longrope); default 1. */
  attentionFactor?: number;
  /**
   * LongRoPE: positions >= longFrom rotate with the second half of invFreq (the long factors),
   * earlier ones with the first (ropeLongFrom / ropeFrequencyTable in src/model/ropeFrequencies.ts).
   * Absent: one table.
   */
  longFrom?: number;
  q: RopeOperand;
  k?: RopeOperand;
}

export interface RopeArgs {
  q: GPUBuffer;
  k?: GPUBuffer;
  positions: GPUBuffer;
  invFreq: GPUBuffer;
  params: GPUBuffer;
}

/** The params uniform's contents for `numTokens` tokens. */
export function ropeParams(numTokens: number): Uint32Array {
  return new Uint32Array([numTokens, 0, 0, 0]);
}

function resolve(name: string, op: RopeOperand, rotaryDim: number): Required<RopeOperand> {
  const r = { tokenStride: op.heads * op.headStride, offset: 0, ...op };
  const ints = [r.heads, r.headStride, r.tokenStride, r.offset];
  if (!ints.every((v) => Number.isInteger(v) && v >= 0) || r.heads < 1) {
    throw new ShapeError(
      `rope: ${name} needs integer heads >= 1, headStride, tokenStride, offset >= 0; got ${JSON.stringify(op)}`,
    );
  }
  if (r.offset + rotaryDim > r.headStride) {
    throw new ShapeError(
      `rope: ${name}.offset ${r.offset} + rotaryDim ${rotaryDim} exceeds headStride ${r.headStride}`,
    );
  }
  if ((r.heads - 1) * r.headStride + r.headStride > r.tokenStride) {
    throw new ShapeError(
      `rope: ${name} heads ${r.heads} x headStride ${r.headStride} exceed tokenStride ${r.tokenStride}`,
    );
  }
  return r;
}

export class Rope extends Kernel<RopeArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: RopeSpec,
    private readonly q: Required<RopeOperand>,
    private readonly k: Required<RopeOperand> | undefined,
    /** Bound as k when spec.k is absent (never touched then). */
    private readonly placeholder: GPUBuffer,
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: RopeSpec): Promise<Rope> {
    const { rotaryDim } = spec;
    if (!Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim % 2) {
      throw new ShapeError(`rope: rotaryDim must be even and >= 2, got ${rotaryDim}`);
    }
    const af = spec.attentionFactor ?? 1;
    if (!Number.isFinite(af)) throw new ShapeError(`rope: attentionFactor must be finite, got ${af}`);
    const longFrom = spec.longFrom;
    if (longFrom !== undefined && !(Number.isInteger(longFrom) && longFrom >= 0 && longFrom < 2 ** 32 - 1)) {
      throw new ShapeError(`rope: longFrom must be an integer position >= 0, got ${longFrom}`);
    }
    const q = resolve('q', spec.q, rotaryDim);
    const k = spec.k ? resolve('k', spec.k, rotaryDim) : undefined;
    const pipeline = await Kernel.compile(ctx, 'rope', kernelSource('rope'), {
      Q_HEADS: q.heads,
      Q_HEAD_STRIDE: q.headStride,
      Q_TOKEN_STRIDE: q.tokenStride,
      Q_OFFSET: q.offset,
      K_HEADS: k?.heads ?? 0,
      K_HEAD_STRIDE: k?.headStride ?? 0,
      K_TOKEN_STRIDE: k?.tokenStride ?? 0,
      K_OFFSET: k?.offset ?? 0,
      ROTARY_DIM: rotaryDim,
      INTERLEAVED: spec.interleaved ? 1 : 0,
      ATTENTION_FACTOR: af,
      LONG_FROM: longFrom ?? 0xffffffff,
    });
    const placeholder = await Kernel.placeholder(ctx, 'rope.noK');
    const bindings = { q: 0, k: 1, positions: 2, invFreq: 3, params: 4 };
    const init = { ctx, name: 'rope', pipeline, bindings, unit: 'tokens', owned: [placeholder] };
    return new Rope(init, spec, q, k, placeholder);
  }

  /** See the file header for shapes; `k` exactly when spec.k is set. */
  bind(b: RopeArgs): GPUBindGroup {
    if (!!this.k !== !!b.k) throw new ShapeError(`rope: k buffer must be given exactly when spec.k is set`);
    if (b.k === b.q) {
      throw new ShapeError('rope: q and k are one buffer; describe its adjacent q and k heads as one operand q');
    }
    const tables = this.spec.longFrom === undefined ? 1 : 2;
    const half = this.spec.rotaryDim / 2;
    this.need('invFreq', b.invFreq, tables * half * 4, tables === 1 ? `${half} f32` : `[2][${half}] f32`);
    this.need('params', b.params, 4, '{ numTokens u32 }');
    // Tokens a buffer holds: the last token needs only up to the end of its last head.
    const fits = (buf: GPUBuffer, op: Required<RopeOperand>) => {
      const lastRow = op.heads * op.headStride;
      return buf.size < lastRow * 4 ? 0 : Math.floor((buf.size / 4 - lastRow) / op.tokenStride) + 1;
    };
    const capacity = Math.min(
      fits(b.q, this.q),
      this.k ? fits(b.k!, this.k) : Infinity,
      Math.floor(b.positions.size / 4),
    );
    return this.bindGroup({ ...b, k: b.k ?? this.placeholder }, capacity);
  }

  grid(numTokens: number): Grid {
    const heads = this.q.heads + (this.k?.heads ?? 0);
    return this.grid1D(numTokens * heads * (this.spec.rotaryDim / 2), 64);
  }
}

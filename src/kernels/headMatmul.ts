/**
 * headMatmul wrapper: a matmul per (token, head) against that head's block of rows of one weight,
 * with the values after the inputs copied through (see shaders/model/headMatmul.wgsl). MLA's
 * absorbed form uses it for q_lat = W_UK[h]^T q_nope (+ q_pe copied) and o[h] = W_UV[h] o_lat[h].
 * Never submits.
 *
 * Bind arguments (numTokens is a runtime count, in the params uniform):
 *   x       f32 [numTokens][heads][xStride]
 *   w       [rows][wCols] f32, or f16 two per u32 word (weightDtype), as uploadWeights stores it
 *   y       f32 [numTokens][heads][out + copy]
 *   params  uniform { numTokens u32 } (16 bytes)
 * Grid: numTokens * heads * (out + copy) threads in workgroups of 64, folded into (x, y).
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import type { WeightDtype } from '../gpu/dtype';
import { Kernel, type Grid, type KernelInit } from './kernel';
import { kernelSource, weightWord4Format } from './sources';

export interface HeadMatmulSpec {
  heads: number;
  /** Row width of W (a multiple of 4). */
  wCols: number;
  /**
   * Rows of W per head, and the first row of this product's block within a head's rows; a
   * non-transposed block runs to the end of the head's rows (MLA: the v rows after k_nope).
   */
  wHeadRows: number;
  wRow0: number;
  /** false: y = W_h x (rows j, IN = wCols); true: y = W_h^T x (W_h's rows i, OUT = wCols). */
  transposed: boolean;
  /** Inputs per head: wCols when not transposed; the block's rows when transposed. */
  in: number;
  /** Values per head copied after the products (from x[.., in ..]); default 0. */
  copy?: number;
  /** Values from one head of x to the next; default in + copy. */
  xStride?: number;
  weightDtype: WeightDtype;
}

export interface HeadMatmulArgs {
  x: GPUBuffer;
  w: GPUBuffer;
  y: GPUBuffer;
  params: GPUBuffer;
}

export class HeadMatmul extends Kernel<HeadMatmulArgs> {
  private constructor(
    init: KernelInit,
    readonly spec: Required<HeadMatmulSpec>,
    readonly out: number,
  ) {
    super(init);
  }

  static async create(ctx: GpuContext, spec: HeadMatmulSpec): Promise<HeadMatmul> {
    const s: Required<HeadMatmulSpec> = { copy: 0, xStride: spec.in + (spec.copy ?? 0), ...spec };
    const ints = [s.heads, s.wCols, s.wHeadRows, s.wRow0, s.in, s.copy, s.xStride];
    if (!ints.every((v) => Number.isInteger(v) && v >= 0) || s.heads < 1 || s.in < 1 || s.wCols < 1) {
      throw new ShapeError(
        `headMatmul: heads, in, wCols must be integers >= 1 and the rest >= 0; got ${JSON.stringify(spec)}`,
      );
    }
    if (s.wCols % 4) throw new ShapeError(`headMatmul: wCols must be a multiple of 4 (got ${s.wCols})`);
    if (!s.transposed && s.in !== s.wCols)
      throw new ShapeError(`headMatmul: y = W x takes in = wCols (${s.in} != ${s.wCols})`);
    const out = s.transposed ? s.wCols : spec.wHeadRows - spec.wRow0;
    const blockRows = s.transposed ? s.in : out;
    if (s.wRow0 + blockRows > s.wHeadRows)
      throw new ShapeError(`headMatmul: rows ${s.wRow0} + ${blockRows} pass the ${s.wHeadRows} rows of a head`);
    if (s.in + s.copy > s.xStride)
      throw new ShapeError(`headMatmul: in ${s.in} + copy ${s.copy} pass xStride ${s.xStride}`);
    const src = kernelSource('headMatmul', { word: weightWord4Format(s.weightDtype) });
    const pipeline = await Kernel.compile(ctx, 'headMatmul', src, {
      HEADS: s.heads,
      IN: s.in,
      OUT: out,
      COPY: s.copy,
      X_STRIDE: s.xStride,
      W_COLS: s.wCols,
      W_HEAD_ROWS: s.wHeadRows,
      W_ROW0: s.wRow0,
      TRANSPOSED: s.transposed ? 1 : 0,
    });
    const bindings = { x: 0, w: 1, y: 2, params: 3 };
    return new HeadMatmul({ ctx, name: 'headMatmul', pipeline, bindings, unit: 'tokens' }, s, out);
  }

  /** Values per head of y: out + copy. */
  get yStride(): number {
    return this.out + this.spec.copy;
  }

  /** See the file header for shapes. */
  bind(b: HeadMatmulArgs): GPUBindGroup {
    const { heads, wCols, wHeadRows, weightDtype, xStride } = this.spec;
    const wBytes = heads * wHeadRows * wCols * (weightDtype === 'f16' ? 2 : 4);
    this.need('w', b.w, wBytes, `[${heads * wHeadRows}, ${wCols}] ${weightDtype}`);
    this.need('params', b.params, 4, '{ numTokens u32 }');
    const tokens = Math.min(
      Math.floor(b.x.size / (4 * heads * xStride)),
      Math.floor(b.y.size / (4 * heads * this.yStride)),
    );
    return this.bindGroup({ ...b }, tokens);
  }

  grid(numTokens: number): Grid {
    return this.grid1D(numTokens * this.spec.heads * this.yStride, 64);
  }
}

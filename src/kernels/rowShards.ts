/**
 * Matrices split by rows across GPU buffers. One storage binding holds at most
 * maxStorageBufferBindingSize bytes (128 MiB on lavapipe, many phones and some desktops) and one
 * buffer at most maxBufferSize, while e.g. Qwen2.5-0.5B's tied embedding [151936, 896] takes 260 MiB
 * at f16. Such a matrix is uploaded as row shards (src/model/weights.ts): shard i holds rows
 * firstRow .. firstRow + rows - 1 of W in W's own layout (f32, f16 pairs or GGUF blocks; a row is
 * always whole blocks, so the split is clean), and the GEMM, the GEMV and the embedding gather bind
 * it as one bind group per shard and dispatch once per shard. Each shard carries a small uniform,
 * its `range` { firstRow, rows } (the shaders' `Shard` struct): the GEMM / GEMV write its rows to
 * output columns firstRow + n, the gather writes only the tokens whose ids it holds. An unsplit W
 * is one shard (0, N), whose range uniform the kernel owns.
 *
 * Shard rows are multiples of SHARD_ROW_MULTIPLE but for the last, balanced over the shards
 * (planRowShards): e.g. [151936, 896] f32 (3584 bytes a row) under a 128 MiB limit: at most 37440
 * rows (37449 fit, 37440 in 64s), so 5 shards: 4 of 30400 rows and a last one of 30336.
 */
import type { GpuContext } from '../gpu/context';
import { UNIFORM, writeBuffer } from '../gpu/buffers';
import { ShapeError } from '../gpu/errors';
import { checkBindingSize, Kernel, type Grid } from './kernel';

/** Rows [firstRow, firstRow + rows) of a matrix in their own buffer. */
export interface RowShard {
  buffer: GPUBuffer;
  firstRow: number;
  rows: number;
  /** uniform { firstRow, rows, 0, 0 } u32 (shardRange), the shaders' Shard struct. */
  range: GPUBuffer;
}

/** A matrix as the GEMM, GEMV and gather bind it: one buffer, or its row shards in row order. */
export type MatrixBuffers = GPUBuffer | readonly RowShard[];

/**
 * Shard rows are a multiple of this (the last shard aside): whole strips of the GEMV (4 rows) and
 * tiles of the GEMM (32 or 64 rows), and 64-row byte offsets stay 256-aligned for any row length.
 */
export const SHARD_ROW_MULTIPLE = 64;

/** The range uniform's contents: e.g. rows 30400.. of a [151936, 896] table -> [30400, 30400, 0, 0]. */
export function shardRange(firstRow: number, rows: number): Uint32Array {
  return new Uint32Array([firstRow, rows, 0, 0]);
}

/** A 16-byte range uniform, written once (set-up, not the hot path). */
export async function createShardRange(
  ctx: GpuContext,
  label: string,
  firstRow: number,
  rows: number,
): Promise<GPUBuffer> {
  const buffer = await ctx.createBuffer(label, 16, UNIFORM);
  writeBuffer(ctx, buffer, shardRange(firstRow, rows));
  return buffer;
}

/** Bytes one shard's buffer may take here: one binding and one buffer. */
export function maxShardBytes(limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'>) {
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
}

/**
 * How to split a matrix of `rows` rows whose buffer of r rows takes bufferBytes(r) bytes into
 * shards of at most `maxBytes`: one shard when it fits, else the fewest shards of equal rows (a
 * multiple of SHARD_ROW_MULTIPLE) and a last one with the rest. `what` names the matrix in the
 * error thrown when not even SHARD_ROW_MULTIPLE rows fit.
 */
export function planRowShards(
  rows: number,
  bufferBytes: (rows: number) => number,
  maxBytes: number,
  what: string,
): { firstRow: number; rows: number }[] {
  if (bufferBytes(rows) <= maxBytes) return [{ firstRow: 0, rows }];
  const q = SHARD_ROW_MULTIPLE;
  if (bufferBytes(q) > maxBytes) {
    throw new ShapeError(
      `${what}: ${q} rows take ${bufferBytes(q)} bytes, over one binding (${maxBytes}); rows too long`,
    );
  }
  // Largest multiple of q that fits: from the per-row estimate down (pad words can cost a step).
  let most = Math.max(q, Math.floor(maxBytes / (bufferBytes(q) / q) / q) * q);
  while (bufferBytes(most) > maxBytes) most -= q;
  const count = Math.ceil(rows / most);
  const each = Math.ceil(rows / count / q) * q; // <= most, and (count - 1) * each < rows
  return Array.from({ length: count }, (_, i) => ({
    firstRow: i * each,
    rows: i < count - 1 ? each : rows - (count - 1) * each,
  }));
}

/** One shard's bind group and the rows it dispatches over. */
interface ShardGroup {
  group: GPUBindGroup;
  rows: number;
}

/**
 * The base of the kernels that read a matrix by rows (GEMM, GEMV, gather): bind takes the matrix as
 * MatrixBuffers and makes one bind group per shard; the group it returns (shard 0's) stands for all
 * of them, so callers keep `kernel.encode(pass, bindGroup, n)`: encode dispatches every shard, each
 * with the grid of its own rows. Nothing is created per step.
 */
export abstract class RowShardedKernel<Args> extends Kernel<Args> {
  private readonly shardGroups = new WeakMap<GPUBindGroup, readonly ShardGroup[]>();

  /** Rows of the whole matrix (N of W; the vocabulary of a gather). */
  protected abstract get matrixRows(): number;

  /** Workgroups that n units of work take over a shard of `rows` matrix rows. */
  protected abstract gridRows(n: number, rows: number): Grid;

  /** The grid over the whole matrix (one shard). */
  grid(n: number): Grid {
    return this.gridRows(n, this.matrixRows);
  }

  /**
   * The shards of the bound matrix `what`, checked: rows 0..matrixRows - 1 in order, each buffer at
   * least bufferBytes(rows) and within one binding. A single buffer is one shard over `wholeRange`
   * (the kernel's uniform { 0, matrixRows }).
   */
  protected shardsOf(
    what: string,
    m: MatrixBuffers,
    wholeRange: GPUBuffer,
    bufferBytes: (rows: number) => number,
    shape: (rows: number) => string,
  ): readonly RowShard[] {
    const N = this.matrixRows;
    const shards = 'size' in m ? [{ buffer: m as GPUBuffer, firstRow: 0, rows: N, range: wholeRange }] : m;
    if (shards.length === 0) throw new ShapeError(`${this.name}: ${what} has no shards`);
    let next = 0;
    for (const [i, s] of shards.entries()) {
      if (s.firstRow !== next || !Number.isInteger(s.rows) || s.rows < 1) {
        throw new ShapeError(
          `${this.name}: ${what} shard ${i} holds rows ${s.firstRow}..${s.firstRow + s.rows - 1}; ` +
            `expected from ${next}`,
        );
      }
      next += s.rows;
      const bytes = bufferBytes(s.rows);
      this.need(shards.length > 1 ? `${what} shard ${i}` : what, s.buffer, bytes, shape(s.rows));
      checkBindingSize(
        this.ctx,
        this.name,
        `${what} ${shape(s.rows)}`,
        bytes,
        'bind it as row shards (src/model/weights.ts uploads weights past one binding so)',
      );
    }
    if (next !== N) throw new ShapeError(`${this.name}: ${what} shards hold ${next} rows, the kernel reads ${N}`);
    return shards;
  }

  /**
   * One bind group per shard (`named(shard)`: the bind arguments by name, its range included), each
   * holding `capacity` units of work; returns shard 0's, which encode expands to all of them.
   */
  protected bindShards(shards: readonly RowShard[], named: (s: RowShard) => object, capacity: number): GPUBindGroup {
    const groups = shards.map((s, i) => ({
      group: this.bindGroup(named(s), capacity, shards.length > 1 ? `bindGroup.shard${i}` : 'bindGroup'),
      rows: s.rows,
    }));
    this.shardGroups.set(groups[0].group, groups);
    return groups[0].group;
  }

  /** Dispatches n tokens (what these kernels count) over every shard of the bind; 0 encodes nothing. */
  override encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, n: number): void {
    const groups = this.shardGroups.get(bindGroup);
    if (!groups) throw new ShapeError(`${this.name}: the bind group was not made by this kernel's bind`);
    if (!Number.isInteger(n) || n < 0) throw new ShapeError(`${this.name}: tokens must be an integer >= 0, got ${n}`);
    this.checkCount(n);
    const capacity = this.capacity(bindGroup);
    if (n > capacity) throw new ShapeError(`${this.name}: ${n} tokens but the bound buffers hold ${capacity}`);
    if (n === 0) return;
    pass.setPipeline(this.pipeline);
    for (const { group, rows } of groups) {
      const [x, y = 1, z = 1] = this.gridRows(n, rows);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y, z);
    }
  }
}

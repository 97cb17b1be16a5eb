/**
 * matvec wrapper: decode GEMV Y [M, N] = X [M, K] · Wᵀ (+ bias [N]) for M = 1..8 tokens, reading
 * each row of W [N, K] once for all of them (memory-bound: time ≈ W bytes ÷ bandwidth).
 * Same spec, buffers and params uniform as MatMul (matmul.ts); M is a runtime value (params and
 * encode), as are N, K and the bias flag, so one pipeline per weight dtype serves every weight and
 * decode batch size up to MATVEC_MAX_TOKENS. Never submits.
 */
import type { GpuContext } from '../gpu/context';
import { ShapeError } from '../gpu/errors';
import { Kernel } from './kernel';
import { checkMatmulSpec, createMatmulOwned, MatmulKernel, type MatmulOwned, type MatmulSpec } from './matmul';
import { kernelSource, weightWord4Format } from './sources';
import { fixedSubgroupSize } from './splitKvDecode';
import { isSoftwareAdapter } from './adapterKind';

/** MAX_TOKENS in matvec.wgsl: the most tokens one dispatch serves. */
export const MATVEC_MAX_TOKENS = 8;
/**
 * Lanes of a GEMV workgroup (matvec.wgsl and matvecQuant.wgsl): NUM_SG subgroups of SG_SIZE lanes.
 * With workgroup strips they all walk one strip of 4 rows and their partial sums meet by subgroupAdd
 * and then a tree over NUM_SG entries of workgroup memory; with subgroup strips (matvec.wgsl only)
 * each subgroup walks a strip of its own and subgroupAdd is the whole reduction.
 */
export interface MatvecLanes {
  /** Lanes per workgroup (WG). */
  wg: number;
  /** The adapter's fixed subgroup size; 1 with the plain lane snippet (no subgroups). */
  sgSize: number;
  /** wg / sgSize: entries of workgroup memory (16 bytes each) the reduction uses; 1 needs no barrier. */
  numSg: number;
  /** Lanes per strip of 4 rows (STRIP_LANES): wg (workgroup strips) or sgSize (subgroup strips). */
  stripLanes: number;
}

export interface MatvecOptions {
  /** Reduce with subgroupAdd where the adapter has one fixed subgroup size (default true). */
  subgroups?: boolean;
  /**
   * Lanes per workgroup instead of the adapter's choice: a power of two, a multiple of the subgroup
   * size (tests run the GPUs' several-subgroup tree on a software adapter with 64).
   */
  workgroupSize?: number;
  /**
   * 'workgroup': all lanes of a workgroup walk one strip of 4 rows (matvecQuant's only layout);
   * 'subgroup': each subgroup walks a strip of its own (needs subgroups; plain lanes fall back to
   * 'workgroup'). Default 'workgroup'; MatVec passes its adapter's choice (matvecStrips).
   */
  strips?: 'workgroup' | 'subgroup';
}

/** A CPU implementation of WebGPU: adapterKind.ts (re-exported where callers have found it). */
export { isSoftwareAdapter };

/**
 * The GEMV's lanes on this adapter. Workgroup strips (opts.strips, default): GPUs 64 lanes (two
 * warps, one wavefront) on one strip, reduced by subgroup then 64 / SG_SIZE entries of workgroup
 * memory and one barrier per tree step. Software adapters (gated on the adapter: the choice only
 * helps CPU drivers): one subgroup per workgroup (lavapipe 8 lanes, SwiftShader 4), so no workgroup
 * memory and no barrier; a barrier there is a coroutine switch per subgroup and the workgroup memory
 * is zero-filled by Dawn per workgroup. Subgroup strips (with subgroups): SUBGROUP_STRIPS_WG lanes,
 * one strip per subgroup, no workgroup memory read and no barrier on any adapter. Measured
 * (W [2048, 8192] f16, 1 token, lavapipe, 2 loaded cores): WG 8 as one subgroup 8.5-10 ms, WG 64
 * as 8 subgroups 21 ms, v1's WG 64 tree over 8 KiB 21-29 ms. Without subgroups: a plain tree over
 * WG entries (8 lanes on software adapters: lavapipe N = K = 1024, WG 8 1.1 ms against 64 2.5 ms).
 */
export function matvecLanes(ctx: GpuContext, opts: MatvecOptions = {}): MatvecLanes {
  const software = isSoftwareAdapter(ctx);
  const asked = opts.workgroupSize;
  if (asked !== undefined && !(Number.isInteger(Math.log2(asked)) && asked >= 1 && asked <= 256)) {
    throw new ShapeError(`matvec: workgroupSize must be a power of two up to 256, got ${asked}`);
  }
  const sg = opts.subgroups === false ? 0 : fixedSubgroupSize(ctx);
  if (sg > 0 && sg <= 64 && (asked === undefined || asked >= sg)) {
    if (opts.strips === 'subgroup') {
      const wg = asked ?? SUBGROUP_STRIPS_WG;
      return { wg, sgSize: sg, numSg: wg / sg, stripLanes: sg };
    }
    const wg = asked ?? (software ? sg : 64);
    return { wg, sgSize: sg, numSg: wg / sg, stripLanes: wg };
  }
  const wg = asked ?? (software ? 8 : 64);
  return { wg, sgSize: 1, numSg: wg, stripLanes: wg };
}

/**
 * Lanes of a workgroup of subgroup strips: 64, i.e. 16 strips (64 rows) on SwiftShader's subgroups
 * of 4, 8 strips on lavapipe's 8. Measured (kjv-gqa's 29 GEMVs of a decode step, f16, process CPU
 * time, 2 loaded cores): SwiftShader WG 64 and 256 alike, 25-28 ms against 36-37 ms for v2's one
 * subgroup per workgroup.
 */
const SUBGROUP_STRIPS_WG = 64;

/**
 * The plain GEMV's strips on this adapter: subgroup strips on software adapters with subgroups
 * (gated on the adapter: it saves CPU drivers their per-workgroup cost, see matvec.wgsl v3), else
 * workgroup strips (GPUs: unmeasured there, so v2's layout stays).
 */
export function matvecStrips(ctx: GpuContext): 'workgroup' | 'subgroup' {
  return isSoftwareAdapter(ctx) && fixedSubgroupSize(ctx) > 0 ? 'subgroup' : 'workgroup';
}

/** The pipeline constants of matvecLanes that both GEMVs declare (WG, SG_SIZE, NUM_SG). */
export function matvecLaneConstants(l: MatvecLanes): Record<string, number> {
  return { WG: l.wg, SG_SIZE: l.sgSize, NUM_SG: l.numSg };
}

/** Rows of W per workgroup (ROWS in matvec.wgsl). */
const ROWS = 4;

export class MatVec extends MatmulKernel {
  private constructor(
    ctx: GpuContext,
    pipeline: GPUComputePipeline,
    spec: MatmulSpec,
    own: MatmulOwned,
    /** The lane layout it was compiled for. */
    readonly lanes: MatvecLanes,
  ) {
    super(ctx, 'matvec', pipeline, spec, own);
  }

  static async create(ctx: GpuContext, spec: MatmulSpec, opts: MatvecOptions = {}): Promise<MatVec> {
    checkMatmulSpec(spec, 'matvec');
    const lanes = matvecLanes(ctx, { strips: matvecStrips(ctx), ...opts });
    const word = weightWord4Format(spec.weightDtype);
    const src = kernelSource('matvec', { word, subgroups: lanes.sgSize > 1 });
    const needs = { invocations: lanes.wg, workgroupBytes: 16 * lanes.numSg };
    const constants = { ...matvecLaneConstants(lanes), STRIP_LANES: lanes.stripLanes };
    const pipeline = await Kernel.compile(ctx, 'matvec', src, constants, needs);
    return new MatVec(ctx, pipeline, spec, await createMatmulOwned(ctx, 'matvec', spec), lanes);
  }

  /**
   * Grid over a W shard of `rows` rows (all N when unsplit): ceil(rows / 4) strips of 4 rows,
   * wg / stripLanes strips a workgroup, the workgroups laid out as (x, y) with x <=
   * maxComputeWorkgroupsPerDimension (the shader numbers them wid.y * x + wid.x; strips past its
   * rows write nothing). e.g. workgroup strips: N 4096 -> (1024, 1); N 151936 (a vocabulary) ->
   * 37984 strips -> (37984, 1); 300000 rows with a 65535 limit -> 75000 strips -> (37500, 2).
   * Subgroup strips, 16 a workgroup: N 151936 -> 37984 strips -> (2374, 1).
   */
  protected gridRows(_M: number, rows: number): [number, number] {
    const groups = Math.ceil(Math.ceil(rows / ROWS) / (this.lanes.wg / this.lanes.stripLanes));
    const maxX = this.ctx.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxX) return [groups, 1];
    const y = Math.ceil(groups / maxX);
    return [Math.ceil(groups / y), y];
  }

  /** `M` (1..8) must equal the params uniform's M. */
  protected override checkCount(M: number): void {
    if (M > MATVEC_MAX_TOKENS) {
      throw new ShapeError(`matvec: M must be 0..${MATVEC_MAX_TOKENS} tokens, got ${M}; use MatMul for more`);
    }
  }
}

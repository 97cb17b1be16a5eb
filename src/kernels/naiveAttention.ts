/**
 * The naive three-pass attention (naiveScores, naiveSoftmax, naiveOutput): scores materialised in
 * global memory, the baseline any runtime without flash kernels has. Kept beside the flash kernels
 * for the benchmark's vsNaive ratio and as a second GPU cross-check in tests.
 *
 * Scores need numQ * H * maxKv floats; when that passes the storage binding limit the query tokens
 * are processed in chunks, each chunk its own three dispatches over one shared scores buffer.
 * Worked example: 2048 tokens x 32 heads x 2048 keys x 4 B = 512 MiB; with a 128 MiB binding limit
 * chunks of 512 tokens (4 chunks).
 */
import type { GpuContext } from '../gpu/context';
import { bindBuffers, grid1D, UNIFORM, writeBuffer } from '../gpu/buffers';
import type { PageTableMetadata } from '../kv/pageTable';
import { checkSpec, pagedConstants, type AttentionSpec, type PagedKvBuffers, type StepBuffers } from './pagedAttention';
import { kvStorage, pagedKernelSource, plainKernelSource } from './sources';

export interface NaivePlan {
  maxKv: number;
  chunkTokens: number;
  numQ: number;
  /** Sequence of each query token. */
  tokenSeq: Uint32Array;
  scoresBytes: number;
}

export class NaiveAttention {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: AttentionSpec,
    private readonly scoresPipeline: GPUComputePipeline,
    private readonly softmaxPipeline: GPUComputePipeline,
    private readonly outputPipeline: GPUComputePipeline,
  ) {}

  static async create(ctx: GpuContext, spec: AttentionSpec): Promise<NaiveAttention> {
    checkSpec(spec);
    const storage = kvStorage(ctx, spec.kvDtype);
    const consts = pagedConstants(spec);
    const [a, b, c] = await Promise.all([
      ctx.pipelines.get(pagedKernelSource('naiveScores', storage), consts),
      ctx.pipelines.get(plainKernelSource('naiveSoftmax'), { NUM_HEADS: spec.numKvHeads * spec.groupSize }),
      ctx.pipelines.get(pagedKernelSource('naiveOutput', storage), consts),
    ]);
    return new NaiveAttention(ctx, spec, a, b, c);
  }

  plan(meta: PageTableMetadata): NaivePlan {
    const h = this.spec.numKvHeads * this.spec.groupSize;
    const maxKv = Math.max(...meta.kvLens);
    const numQ = meta.qoIndptr[meta.numSeqs];
    const rowBytes = h * maxKv * 4;
    const limit = Math.min(this.ctx.limits.maxStorageBufferBindingSize, this.ctx.limits.maxBufferSize);
    const chunkTokens = Math.max(1, Math.min(numQ, Math.floor(limit / rowBytes)));
    const tokenSeq = new Uint32Array(numQ);
    for (let i = 0; i < meta.numSeqs; i++) tokenSeq.fill(i, meta.qoIndptr[i], meta.qoIndptr[i + 1]);
    return { maxKv, chunkTokens, numQ, tokenSeq, scoresBytes: chunkTokens * rowBytes };
  }

  /**
   * Bind groups for every chunk; creates one 16-byte uniform per chunk (set-up, not per step).
   * tokenSeq: u32 [numQ] from plan(); scores: plan.scoresBytes.
   */
  async bind(
    plan: NaivePlan,
    q: GPUBuffer,
    kv: PagedKvBuffers,
    step: StepBuffers,
    tokenSeq: GPUBuffer,
    scores: GPUBuffer,
    out: GPUBuffer,
    lse: GPUBuffer,
  ): Promise<NaiveBinding> {
    const chunks: NaiveBinding['chunks'] = [];
    for (let start = 0; start < plan.numQ; start += plan.chunkTokens) {
      const numTokens = Math.min(plan.chunkTokens, plan.numQ - start);
      const naive = await this.ctx.createBuffer(`naive.params.${start}`, 16, UNIFORM);
      writeBuffer(this.ctx, naive, new Uint32Array([start, numTokens, plan.maxKv, 0]));
      const table = { 3: step.qoIndptr, 4: step.kvIndptr, 5: step.kvPageIndices, 6: step.kvLastPageLen };
      chunks.push({
        numTokens,
        uniform: naive,
        scores: bindBuffers(this.ctx, this.scoresPipeline, 'naiveScores.bindGroup', {
          ...table, 0: q, 1: kv.kPages, 8: step.params, 9: scores, 12: naive, 13: tokenSeq,
        }),
        softmax: bindBuffers(this.ctx, this.softmaxPipeline, 'naiveSoftmax.bindGroup', { 9: scores, 11: lse, 12: naive }),
        output: bindBuffers(this.ctx, this.outputPipeline, 'naiveOutput.bindGroup', {
          ...table, 2: kv.vPages, 9: scores, 10: out, 12: naive, 13: tokenSeq,
        }),
      });
    }
    return { maxKv: plan.maxKv, chunks };
  }

  /**
   * Encodes the three dispatches of every chunk into one compute pass. WebGPU orders dispatches of
   * a pass that write and read the same storage buffer, so no pass boundaries are needed.
   */
  encode(pass: GPUComputePassEncoder, binding: NaiveBinding): void {
    const h = this.spec.numKvHeads * this.spec.groupSize;
    const dv4 = this.spec.headDimV / 4;
    for (const c of binding.chunks) {
      const passes: [GPUComputePipeline, GPUBindGroup, number][] = [
        [this.scoresPipeline, c.scores, c.numTokens * h * binding.maxKv],
        [this.softmaxPipeline, c.softmax, c.numTokens * h],
        [this.outputPipeline, c.output, c.numTokens * h * dv4],
      ];
      for (const [pipeline, bg, threads] of passes) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bg);
        const [x, y] = grid1D(this.ctx, threads, 64);
        pass.dispatchWorkgroups(x, y);
      }
    }
  }
}

export interface NaiveBinding {
  maxKv: number;
  chunks: { numTokens: number; uniform: GPUBuffer; scores: GPUBindGroup; softmax: GPUBindGroup; output: GPUBindGroup }[];
}

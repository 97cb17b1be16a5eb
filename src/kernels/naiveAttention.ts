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
import { UNIFORM, writeBuffer } from '../gpu/buffers';
import { Kernel, type BindingTable, type Grid, type KernelInit } from './kernel';
import type { PageTableMetadata } from './pageTable';
import {
  checkSpec,
  isSplit,
  pagedConstants,
  splitBuffers,
  SPLIT_READ_BINDINGS,
  type AttentionSpec,
  type PagedKvBuffers,
  type StepBuffers,
} from './pagedAttention';
import { kernelSource, kvPagesFormat, kvWord4Format } from './sources';

export interface NaivePlan {
  maxKv: number;
  chunkTokens: number;
  numQ: number;
  /** Sequence of each query token. */
  tokenSeq: Uint32Array;
  scoresBytes: number;
}

export interface NaiveAttentionArgs {
  /** f32 [numQ][numHeads][headDimQK]. */
  q: GPUBuffer;
  pages: PagedKvBuffers;
  step: StepBuffers;
  /** u32 [numQ], plan.tokenSeq uploaded. */
  tokenSeq: GPUBuffer;
  /** plan.scoresBytes. */
  scores: GPUBuffer;
  out: GPUBuffer;
  lse: GPUBuffer;
}

/** One of the three passes: a 1-D grid of threads in workgroups of 64 (encode's n counts threads). */
class NaivePass extends Kernel<Record<string, GPUBuffer>> {
  static async create(
    ctx: GpuContext,
    name: string,
    source: ReturnType<typeof kernelSource>,
    constants: Record<string, number>,
    bindings: BindingTable,
  ): Promise<NaivePass> {
    const pipeline = await Kernel.compile(ctx, name, source, constants);
    return new NaivePass({ ctx, name, pipeline, bindings, unit: 'threads' } satisfies KernelInit);
  }

  bind(b: Record<string, GPUBuffer>): GPUBindGroup {
    return this.bindGroup(b);
  }

  grid(threads: number): Grid {
    return this.grid1D(threads, 64);
  }
}

const TABLE = { qoIndptr: 3, kvIndptr: 4, kvPageIndices: 5, kvLastPageLen: 6 };

export class NaiveAttention {
  private constructor(
    private readonly ctx: GpuContext,
    readonly spec: AttentionSpec,
    private readonly scoresPass: NaivePass,
    private readonly softmaxPass: NaivePass,
    private readonly outputPass: NaivePass,
  ) {}

  static async create(ctx: GpuContext, spec: AttentionSpec): Promise<NaiveAttention> {
    checkSpec(spec);
    const word = kvWord4Format(ctx, spec.kvDtype);
    const kv = kvPagesFormat(spec.kvDtype);
    const consts = pagedConstants(spec);
    const split = isSplit(spec);
    // A split pool: naiveScores reads K buffers 1..3 (16..18), naiveOutput V buffers 1..3 (19..21).
    const { kPages1, kPages2, kPages3, vPages1, vPages2, vPages3 } = SPLIT_READ_BINDINGS;
    const [a, b, c] = await Promise.all([
      NaivePass.create(ctx, 'naiveScores', kernelSource('naiveScores', { word, kv, split }), consts, {
        ...TABLE,
        ...(split ? { kPages1, kPages2, kPages3 } : {}),
        q: 0,
        kPages: 1,
        params: 8,
        scores: 9,
        naive: 12,
        tokenSeq: 13,
      }),
      NaivePass.create(
        ctx,
        'naiveSoftmax',
        kernelSource('naiveSoftmax'),
        { NUM_HEADS: spec.numKvHeads * spec.groupSize },
        { scores: 9, lse: 11, naive: 12 },
      ),
      NaivePass.create(ctx, 'naiveOutput', kernelSource('naiveOutput', { word, kv, split }), consts, {
        ...TABLE,
        ...(split ? { vPages1, vPages2, vPages3 } : {}),
        vPages: 2,
        params: 8,
        scores: 9,
        out: 10,
        naive: 12,
        tokenSeq: 13,
      }),
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

  /** Bind groups for every chunk; creates one 16-byte uniform per chunk (set-up, not per step). */
  async bind(plan: NaivePlan, b: NaiveAttentionArgs): Promise<NaiveBinding> {
    const { q, pages, step, tokenSeq, scores, out, lse } = b;
    const chunks: NaiveBinding['chunks'] = [];
    const more = splitBuffers(this.spec, pages);
    const pick = (prefix: string) => Object.fromEntries(Object.entries(more).filter(([n]) => n.startsWith(prefix)));
    const kMore = pick('kPages');
    const vMore = pick('vPages');
    for (let start = 0; start < plan.numQ; start += plan.chunkTokens) {
      const numTokens = Math.min(plan.chunkTokens, plan.numQ - start);
      const naive = await this.ctx.createBuffer(`naive.params.${start}`, 16, UNIFORM);
      writeBuffer(this.ctx, naive, new Uint32Array([start, numTokens, plan.maxKv, 0]));
      const table = {
        qoIndptr: step.qoIndptr,
        kvIndptr: step.kvIndptr,
        kvPageIndices: step.kvPageIndices,
        kvLastPageLen: step.kvLastPageLen,
      };
      chunks.push({
        numTokens,
        uniform: naive,
        scores: this.scoresPass.bind({
          ...table,
          q,
          kPages: pages.kPages,
          ...kMore,
          params: step.params,
          scores,
          naive,
          tokenSeq,
        }),
        softmax: this.softmaxPass.bind({ scores, lse, naive }),
        output: this.outputPass.bind({
          ...table,
          vPages: pages.vPages,
          ...vMore,
          params: step.params,
          scores,
          out,
          naive,
          tokenSeq,
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
      this.scoresPass.encode(pass, c.scores, c.numTokens * h * binding.maxKv);
      this.softmaxPass.encode(pass, c.softmax, c.numTokens * h);
      this.outputPass.encode(pass, c.output, c.numTokens * h * dv4);
    }
  }
}

export interface NaiveBinding {
  maxKv: number;
  chunks: {
    numTokens: number;
    uniform: GPUBuffer;
    scores: GPUBindGroup;
    softmax: GPUBindGroup;
    output: GPUBindGroup;
  }[];
}

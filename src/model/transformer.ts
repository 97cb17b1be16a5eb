/**
 * The GPU forward pass for every family: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3,
 * phi3, smollm3, and MLA (DeepSeek dense, MiniCPM3; the absorbed attention block is in
 * mlaAttention.ts). Per layer kind (spec.layers): sliding layers bind their own attention params
 * uniform (the window), RoPE is the global one, gemma3's local one or none (smollm3's NoPE layers).
 * Done at load instead of per step: phi3's fused qkv_proj / gate_up_proj are split into slices, and
 * MiniCPM3's muP residual and logit scales are folded into o_proj, down_proj and the final norm
 * (fusedWeights.ts). gemma2's final-logit soft-cap is applied to the rows read back. Read top to bottom: set-up
 * (weights; kernels, modelKernels.ts; buffers, stepBuffers.ts; bind groups: all once), then
 * forward(batch): one step = one command buffer over preallocated buffers, every layer encoded into
 * one compute pass.
 *
 * The model keeps no KV bookkeeping. Its input is a StepBatch (src/kernels/stepBatch.ts) made by
 * the scheduler (src/engine/scheduler.ts), which owns the KV cache manager: token ids, positions,
 * slots, the CSR page table, copy-on-write pairs and the rows whose logits come back. forward()
 * checks the batch against the buffers it was sized for, uploads it, encodes and submits the step
 * and reads the logits back. The KV pages themselves (KvPool) belong to the scheduler's owner too:
 * it makes them from kvPoolSpec(), prepares a split pool's kernels with prepareKv() and binds them
 * with bindKv() (see there). With a second pool for the sliding-window layers (bindKv(global, local)),
 * those layers write and read their own pages through the batch's `local` slots, page indices and
 * copies (the scheduler frees their dead pages).
 *
 * Step layout: the step's tokens are the concatenation of each sequence's new tokens; T = their
 * count (<= maxTokens). First, copy-on-write: the batch's (src, dst) page pairs are copied in every
 * layer (copyPages; over a split pool, copyBufferToBuffer through a scratch buffer before the pass,
 * encodeSplitPageCopies), so a forked sequence writes into its private copy of a shared page. Per layer:
 *   xn = norm(h)                       (layer 0: plain; later: fused with the residual add below)
 *   q, k, v = xn Wq, xn Wk, xn Wv (+ bias, qwen2); qwen3: q, k = rmsNorm per head; RoPE on q, k
 *     (MLA: q and the latent row [rmsNorm(c_kv) | k_pe]; RoPE on their rope parts; the absorbed
 *      query [W_UK^T q_nope | q_pe]; the latent row is appended, read as K and as V)
 *   kvAppend(k, v) into the layer's pages;  a = attention(q, pages): flashPrefill, or split-KV
 *     decode (MLA: head-blocked mlaDecode) + mergePartials when every sequence has few new tokens
 *   o = a Wo (MLA: a = W_UV o_lat per head first);  h += o;  xn = post_attention_norm(h)
 *     (gemma2/3 sandwich: o = post_attention_norm(o) in place; h += o; xn = pre_feedforward_norm(h))
 *   down = (act(xn Wgate) * xn Wup) Wdown;  h += down;  xn = next layer's input norm (or final norm)
 *     (gemma2/3: down = post_feedforward_norm(down) in place first)
 * then the batch's logit rows are gathered and multiplied by the LM head (a step whose logit rows are
 * all its tokens in order, e.g. batch decode, multiplies xn itself: no gather).
 */
import type { GpuContext } from '../gpu/context';
import { STORAGE, writeBuffer } from '../gpu/buffers';
import { ShapeError } from '../gpu/errors';
import { maxPagesPerLayer, pageBufferBytes, type KvPool, type KvPoolSpec } from '../kernels/kvPool';
import { encodeSplitPageCopies } from '../kernels/copyPages';
import { KV_SPLIT_MAX_BUFFERS, type PagedKvBuffers } from '../kernels/pagedAttention';
import type { StepBatch } from '../kernels/stepBatch';
import { attentionParams, type AttentionSpec, workItemsHeld } from '../kernels/pagedAttention';
import { MATVEC_MAX_TOKENS } from '../kernels/matvec';
import { rmsNormParams } from '../kernels/rmsNorm';
import { embeddingParams } from '../kernels/embedding';
import type { ModelFiles } from '../sources/modelSource';
import { parseConfig, type ModelSpec } from './config';
import { expectedTensors, runtimeTensors } from './expectedTensors';
import { loadScales, splitFusedTensors } from './fusedWeights';
import { ggufDefaultWeightDtype, ggufModelFiles, ggufNativeTensors } from './ggufModelFiles';
import { checkWeights, uploadWeights, weightBuffers, weightMatrix, WeightError, type GpuWeight } from './weights';
import type { MatrixBuffers } from '../kernels/rowShards';
import { quantMatmulParams } from '../kernels/matmulQuant';
import { checkTransformerSizes, type TransformerOptions } from './transformerOptions';
import {
  createAttentionKernels,
  createKernels,
  type AttentionKernels,
  type Kernels,
  type Proj,
  type ProjKernels,
} from './modelKernels';
import { createBuffers, type Buffers } from './stepBuffers';

export type { TransformerOptions } from './transformerOptions';
import { mlaAttentionSpec, type MlaLayer } from './mlaAttention';
import { kvSpecOf } from './kvBill';
import { kvDtypeProblem } from '../kv/accounting';

/** A projection: the kernels of its weight's stored dtype (GEMM for prefill, GEMV for decode) and their bind groups. */
interface Linear {
  gemm: GPUBindGroup;
  gemv: GPUBindGroup;
  kernels: ProjKernels;
}

export class Transformer {
  private readonly owned: { destroy(): void }[] = [];
  /** The bound KV pages (bindKv) and the per-layer bind groups over them; none until bound. */
  private pool: KvPool | null = null;
  /** The sliding-window layers' own pool (bindKv's second argument), or null: every layer in `pool`. */
  private localPool: KvPool | null = null;
  private layers: LayerBinds[] = [];
  /** A split pool's attention / append kernels by pagesPerBuffer (prepareKv); compiled once, kept. */
  private readonly splitKernels = new Map<number, AttentionKernels>();
  /** Copy-on-write's staging pages over a split pool (encodeSplitPageCopies), allocated at bindKv. */
  private copyScratch: GPUBuffer | null = null;
  /** The (T, R, numSeqs) whose count uniforms forward() last uploaded (only forward writes them). */
  private uploadedCounts = '';

  private constructor(
    readonly ctx: GpuContext,
    readonly spec: ModelSpec,
    readonly opts: Required<TransformerOptions>,
    /** The layout of one layer's KV pages (MLA: one latent row per token, V aliasing K). */
    readonly attention: AttentionSpec,
    private readonly weights: Map<string, GpuWeight>,
    private readonly k: Kernels,
    private readonly b: Buffers,
    private readonly head: HeadBinds,
  ) {}

  static async load(ctx: GpuContext, files: ModelFiles, options: TransformerOptions = {}): Promise<Transformer> {
    files = ggufModelFiles(files); // a GGUF file reads as the HF folder it was converted from
    const spec = parseConfig(files.config, `${files.source}: config.json`);
    const maxContext = options.maxContext ?? Math.min(spec.maxPositionEmbeddings, 4096);
    const opts: Required<TransformerOptions> = {
      weightDtype: options.weightDtype ?? ggufDefaultWeightDtype(files) ?? 'f16', // a GGUF keeps its blocks
      kvDtype: options.kvDtype ?? 'f16',
      pageSize: options.pageSize ?? 16,
      maxTokens: options.maxTokens ?? 256,
      maxSeqs: options.maxSeqs ?? 16,
      maxLogitRows: Math.max(options.maxLogitRows ?? 0, options.maxSeqs ?? 16),
      maxContext,
    };
    checkTransformerSizes(options, opts, spec, ctx.limits); // names a bad option before anything is allocated
    const kvProblem = kvDtypeProblem(kvSpecOf(spec, opts.kvDtype)); // q4 on heads too small for it
    if (kvProblem) throw new ShapeError(`${files.source}: kvDtype ${opts.kvDtype}: ${kvProblem}`);
    // MLA: one latent row [c_kv | k_pe] per token, the absorbed query [q_lat | q_pe] per head.
    const attn: AttentionSpec = {
      ...(spec.mla
        ? mlaAttentionSpec(spec, opts.pageSize, opts.kvDtype)
        : {
            numKvHeads: spec.numKvHeads,
            groupSize: spec.numHeads / spec.numKvHeads,
            headDimQK: spec.headDim,
            headDimV: spec.headDimV,
            pageSize: opts.pageSize,
            kvDtype: opts.kvDtype,
          }),
      // gemma2: tanh(s / cap) * cap on every score, a pipeline constant of the attention kernels.
      ...(spec.attnLogitSoftcap !== null ? { softcap: spec.attnLogitSoftcap } : {}),
    };

    // phi3's fused qkv_proj / gate_up_proj are checked under their own names, then read as the
    // q/k/v and gate/up slices the kernels bind (fusedWeights.ts); MiniCPM3's muP scales fold in.
    if (spec.fusedProjections) {
      const problems = checkWeights(files, expectedTensors(spec));
      if (problems.length) throw new WeightError(problems.join('\n  '));
    }
    const weights = await uploadWeights(ctx, splitFusedTensors(files, spec), runtimeTensors(spec), {
      dtype: opts.weightDtype,
      scales: loadScales(spec),
      // A GGUF at its default dtype keeps each tensor in the file's format (Q4_K, Q6_K, Q5_0, ...).
      native: options.weightDtype === undefined ? ggufNativeTensors(files, opts.weightDtype) : undefined,
    });
    const owned: { destroy(): void }[] = [...weights.values()].flatMap(weightBuffers);
    try {
      const kernels = await createKernels(ctx, spec, attn, opts, (name) => weights.get(name)!.dtype);
      const buffers = await createBuffers(ctx, spec, attn, opts, kernels, owned);
      const head = bindHead(spec, kernels, buffers, (name) => weightMatrix(weights.get(name)!));
      const model = new Transformer(ctx, spec, opts, attn, weights, kernels, buffers, head);
      model.owned.push(...owned);
      return model;
    } catch (e) {
      for (const o of owned) o.destroy();
      throw e;
    }
  }

  /**
   * The KV pages this model needs for `numPages` pages per layer. The pool is not the model's: the
   * scheduler decides how many pages there are and who holds them, so whoever owns the scheduler
   * (Engine, StepRunner in src/engine) makes the pool with KvPool.create(ctx, kvPoolSpec(n)), binds
   * it here with bindKv, and destroys it. One model can so be served by successive owners (a
   * generate() call, then an Engine), each with the pool its budget wants. At most maxKvPages.
   */
  kvPoolSpec(numPages: number, layers: 'all' | 'global' | 'local' = 'all'): KvPoolSpec {
    const local = this.slidingLayers;
    const numLayers = layers === 'all' ? this.spec.numLayers : layers === 'local' ? local : this.spec.numLayers - local;
    return { ...this.attention, numLayers, numPages };
  }

  /** Layers with a sliding window (the ones a second, window-freed pool can hold); 0 when none slides. */
  get slidingLayers(): number {
    return this.spec.slidingWindow === null ? 0 : this.spec.layers.filter((l) => l.sliding).length;
  }

  /**
   * Most pages one layer's pool can hold here: what one storage binding holds, times 4 where the
   * device binds the 16 storage buffers a split pool's kernels need (kvPool.ts; SwiftShader: 12).
   */
  get maxKvPages(): number {
    const one = maxPagesPerLayer(this.ctx, this.attention);
    return this.ctx.limits.maxStorageBuffersPerShaderStage >= 16 ? KV_SPLIT_MAX_BUFFERS * one : one;
  }

  /**
   * Makes the attention and append kernels a pool of `poolSpec` (KvPool.spec) binds, before
   * bindKv: none for a pool in one buffer (the load's kernels), the split variants (compiled once
   * per pagesPerBuffer, then cached) for a split pool. Set-up, not per step.
   */
  async prepareKv(poolSpec: KvPoolSpec): Promise<void> {
    const ppb = poolSpec.pagesPerBuffer;
    if (ppb === undefined || this.splitKernels.has(ppb)) return;
    this.splitKernels.set(ppb, await createAttentionKernels(this.ctx, { ...this.attention, pagesPerBuffer: ppb }));
  }

  /** The bound KV pool, or null. */
  get kvPool(): KvPool | null {
    return this.pool;
  }

  /** The sliding-window layers' bound pool, or null. */
  get kvPoolLocal(): KvPool | null {
    return this.localPool;
  }

  /**
   * Binds the KV pages forward() reads and writes: builds every layer's bind groups over them (once,
   * not per step). One pool of every layer (kvPoolSpec(n)), or two: `pool` for the full layers
   * (kvPoolSpec(n, 'global')) and `local` for the sliding ones (kvPoolSpec(m, 'local')), whose
   * steps then carry batch.local. null unbinds (the owner is about to destroy the pools).
   */
  bindKv(pool: KvPool | null, local: KvPool | null = null): void {
    if (pool === null) {
      this.pool = null;
      this.localPool = null;
      this.layers = [];
      this.copyScratch?.destroy();
      this.copyScratch = null;
      return;
    }
    if (local && this.slidingLayers === 0) throw new ShapeError('bindKv: a sliding-window pool, but no layer slides');
    const check = (p: KvPool, layers: 'all' | 'global' | 'local') => {
      const want = this.kvPoolSpec(p.spec.numPages, layers);
      for (const key of Object.keys(want) as (keyof KvPoolSpec)[]) {
        if (p.spec[key] !== want[key]) {
          const [got, need] = [String(p.spec[key]), String(want[key])];
          const which = layers === 'local' ? "sliding-window pool's" : "pool's";
          throw new ShapeError(`bindKv: the ${which} ${key} is ${got}, this model needs ${need}`);
        }
      }
    };
    check(pool, local ? 'global' : 'all');
    if (local) check(local, 'local');
    // A split pool's kernels (prepareKv); a pool in one buffer binds the load's.
    const kernelsOf = (p: KvPool): AttentionKernels => {
      const ppb = p.spec.pagesPerBuffer;
      if (ppb === undefined) return this.k;
      const found = this.splitKernels.get(ppb);
      if (!found) {
        throw new ShapeError(
          `bindKv: the pool is split across ${p.buffersPerLayer} buffers of ${ppb} pages per layer; ` +
            'call prepareKv(pool.spec) first',
        );
      }
      return found;
    };
    const [poolKernels, localKernels] = [kernelsOf(pool), local ? kernelsOf(local) : null];
    const w = (name: string) => this.weights.get(name)!.buffer;
    const m = (name: string) => weightMatrix(this.weights.get(name)!); // a matrix: its buffer or row shards
    const layers: LayerBinds[] = [];
    let [globalIndex, localIndex] = [0, 0];
    for (let l = 0; l < this.spec.numLayers; l++) {
      const inLocal = local !== null && this.spec.layers[l].sliding;
      const pages = inLocal ? local.layers[localIndex++] : pool.layers[local ? globalIndex++ : l];
      const p = inLocal ? local : pool;
      const kv = { pages, local: inLocal, pagesPerBuffer: p.spec.pagesPerBuffer, buffers: p.buffersPerLayer };
      layers.push(bindLayer(this.spec, this.k, inLocal ? localKernels! : poolKernels, this.b, kv, l, w, m));
    }
    // Copy-on-write over a split pool stages at most maxSeqs pages (a step's pairs) through scratch.
    const split = [pool, local].some((p) => p?.spec.pagesPerBuffer !== undefined);
    this.copyScratch?.destroy();
    this.copyScratch = null;
    if (split) {
      const pageBytes = Math.max(
        pageBufferBytes(this.attention, this.attention.headDimQK),
        pageBufferBytes(this.attention, this.attention.headDimV),
      );
      this.copyScratch = this.ctx.device.createBuffer({
        label: 'model.copyScratch',
        size: this.opts.maxSeqs * pageBytes,
        usage: STORAGE,
      });
    }
    this.layers = layers;
    this.pool = pool;
    this.localPool = local;
  }

  /**
   * Runs one step and returns the logits of the batch's logit rows, [logitRows.length][vocab], row r
   * = the prediction after token logitRows[r]. The batch is the scheduler's (src/engine/scheduler.ts):
   * it is only checked against the buffers this model was sized for and the bound pool, so a bad
   * batch is refused before anything is uploaded.
   */
  async forward(batch: StepBatch): Promise<Float32Array> {
    this.ctx.assertAlive();
    const { spec, b, k } = this;
    this.check(batch);
    const { tokenIds: ids, positions, slots, pageTable: meta, copies, logitRows: lastRows } = batch;
    const T = ids.length;
    const R = lastRows.length;
    const numCopies = copies.length / 2;
    // Split-KV + merge when every sequence has 1..maxQueryTokens new tokens (decodeTakes in
    // pagedAttention.ts) and the plan fits the step buffers; otherwise flashPrefill.
    const capacity = { slots: b.maxSlots, workItems: workItemsHeld(b.work) };
    const decode = k.decode.takes(meta, capacity);
    const plan = decode ? k.decode.plan(meta, capacity) : undefined;
    const { work, numWorkItems } = plan ?? k.prefill.plan(meta);
    if (plan && plan.numSlots > b.maxSlots)
      throw new ShapeError(
        `forward: split-KV decode wants ${plan.numSlots} partial slots, ${b.maxSlots} were allocated`,
      ); // cannot happen: maxPlan
    const q = (buf: GPUBuffer, data: ArrayBufferView) => writeBuffer(this.ctx, buf, data);
    q(b.ids, ids);
    q(b.positions, positions);
    q(b.slots, slots);
    q(b.lastRows, lastRows);
    q(b.step.qoIndptr, meta.qoIndptr);
    q(b.step.kvIndptr, meta.kvIndptr);
    q(b.step.kvPageIndices, meta.kvPageIndices);
    q(b.step.kvLastPageLen, meta.kvLastPageLen);
    q(b.work, work);
    if (plan) q(b.slotIndptr, plan.slotIndptr);
    if (numCopies) {
      q(b.copyPairs, copies);
      q(b.copyCount, new Uint32Array([numCopies, 0, 0, 0]));
    }
    // The sliding layers' own page group: its slots, page indices and copy-on-write pairs.
    const numLocalCopies = batch.local ? batch.local.copies.length / 2 : 0;
    if (batch.local) {
      const g = b.localGroup!;
      q(g.slots, batch.local.slots);
      q(g.step.kvPageIndices, batch.local.kvPageIndices);
      if (numLocalCopies) {
        q(g.copyPairs, batch.local.copies);
        q(g.copyCount, new Uint32Array([numLocalCopies, 0, 0, 0]));
      }
    }
    // The uniforms that follow from the step's counts alone, uploaded when these change: a run of
    // decode steps (T = R = numSeqs = 1, ...) writes them once.
    const counts = `${T},${R},${meta.numSeqs}`;
    if (counts !== this.uploadedCounts) {
      // Full layers and sliding layers differ only in the window (their own params uniform).
      const full = { scale: spec.softmaxScale, causal: true, window: 0 };
      q(b.step.params, new Uint8Array(attentionParams(meta.numSeqs, full)));
      if (b.stepSliding) {
        const sliding = { ...full, window: spec.slidingWindow ?? 0 };
        q(b.stepSliding.params, new Uint8Array(attentionParams(meta.numSeqs, sliding)));
      }
      q(b.tokens, rmsNormParams(T));
      q(b.qHeadRows, rmsNormParams(T * spec.numHeads));
      q(b.kHeadRows, rmsNormParams(T * spec.numKvHeads));
      q(b.lastTokens, embeddingParams(R));
      for (const [role, s] of Object.entries(b.projSpecs)) {
        q(b.projParams[role as Proj]!, quantMatmulParams(s, role === 'lmHead' ? R : T));
      }
      this.uploadedCounts = counts;
    }

    await this.ctx.validated('forward', () => {
      const encoder = this.ctx.device.createCommandEncoder({ label: 'forward' });
      this.encodeSplitCopies(encoder, copies, batch.local?.copies);
      const pass = encoder.beginComputePass({ label: 'forward' });
      const shape = {
        T,
        logitRows: R,
        numWork: numWorkItems,
        decode,
        numSeqs: meta.numSeqs,
        numCopies,
        numLocalCopies,
        logitRowsInOrder: rowsInOrder(lastRows, T),
      };
      this.encode(pass, shape);
      pass.end();
      encoder.copyBufferToBuffer(b.logits, 0, b.logitsReadback, 0, 4 * R * spec.vocabSize);
      this.ctx.device.queue.submit([encoder.finish()]);
    });
    // The readback buffer is preallocated too: a decode step creates no GPU object.
    await b.logitsReadback.mapAsync(0x1 /* GPUMapMode.READ */, 0, 4 * R * spec.vocabSize);
    const logits = new Float32Array(b.logitsReadback.getMappedRange(0, 4 * R * spec.vocabSize).slice(0));
    b.logitsReadback.unmap();
    // gemma2's final soft-cap, tanh(x / cap) * cap, on the rows read back (R x vocab values).
    const cap = spec.finalLogitSoftcap;
    if (cap !== null) for (let i = 0; i < logits.length; i++) logits[i] = Math.tanh(logits[i] / cap) * cap;
    return logits;
  }

  /** Refuses a batch that does not fit this model's buffers or the bound pool (ShapeError). */
  private check(batch: StepBatch): void {
    const { spec, opts, pool } = this;
    if (!pool) throw new ShapeError('forward: no KV pool is bound (see bindKv)');
    const { tokenIds, positions, slots, pageTable: meta, copies, logitRows } = batch;
    const T = tokenIds.length;
    const n = meta.numSeqs;
    const numPages = pool.spec.numPages;
    const fail = (what: string) => {
      throw new ShapeError(`forward: ${what}`);
    };
    if (n === 0 || n > opts.maxSeqs) fail(`${n} sequences; this model was set up for 1..${opts.maxSeqs}`);
    if (T === 0 || T > opts.maxTokens) fail(`${T} tokens; this model was set up for 1..${opts.maxTokens}`);
    if (positions.length !== T || slots.length !== T || meta.qoIndptr[n] !== T) {
      fail(`${T} token ids, ${positions.length} positions, ${slots.length} slots, ${meta.qoIndptr[n]} query rows`);
    }
    if (meta.pageSize !== opts.pageSize) fail(`page size ${meta.pageSize}; this model was set up for ${opts.pageSize}`);
    const R = logitRows.length;
    if (R === 0 || R > opts.maxLogitRows) fail(`${R} logit rows; this model was set up for 1..${opts.maxLogitRows}`);
    for (const r of logitRows) if (r >= T) fail(`logit row ${r} of a ${T}-token step`);
    const V = spec.vocabSize;
    for (const id of tokenIds) if (id >= V) fail(`token id ${id} is outside the vocabulary (0..${V - 1})`);
    const context = `past the context of ${opts.maxContext}`;
    for (const len of meta.kvLens) if (len > opts.maxContext) fail(`a sequence of ${len} tokens, ${context}`);
    for (const p of positions) if (p >= opts.maxContext) fail(`position ${p}, ${context}`);
    const outside = `outside the pool of ${numPages} pages`;
    for (const slot of slots) if (!(slot >= 0 && slot < numPages * opts.pageSize)) fail(`slot ${slot} ${outside}`);
    for (const p of meta.kvPageIndices) if (p >= numPages) fail(`page ${p} ${outside}`);
    if (copies.length % 2 !== 0 || copies.length > 2 * opts.maxSeqs) {
      fail(`${copies.length / 2} copy-on-write pairs; at most ${opts.maxSeqs}`);
    }
    for (const p of copies) if (p >= numPages) fail(`copy-on-write page ${p} ${outside}`);
    const local = this.localPool;
    if ((local !== null) !== (batch.local !== undefined)) {
      fail(
        local
          ? 'a sliding-window pool is bound but the batch has no local group'
          : 'a local group but no sliding-window pool is bound',
      );
    }
    if (local && batch.local) {
      const g = batch.local;
      const outsideLocal = `outside the sliding-window pool of ${local.spec.numPages} pages`;
      if (g.slots.length !== T || g.kvPageIndices.length !== meta.kvPageIndices.length) {
        fail(`local group: ${g.slots.length} slots, ${g.kvPageIndices.length} page indices`);
      }
      for (const slot of g.slots)
        if (!(slot >= 0 && slot < local.spec.numPages * opts.pageSize)) fail(`local slot ${slot} ${outsideLocal}`);
      for (const p of g.kvPageIndices) if (p >= local.spec.numPages) fail(`local page ${p} ${outsideLocal}`);
      if (g.copies.length % 2 !== 0 || g.copies.length > 2 * opts.maxSeqs) {
        fail(`${g.copies.length / 2} local copy-on-write pairs; at most ${opts.maxSeqs}`);
      }
      for (const p of g.copies) if (p >= local.spec.numPages) fail(`local copy-on-write page ${p} ${outsideLocal}`);
    }
  }

  /**
   * Copy-on-write of the layers over a split pool, before the pass (the pass's appends then write
   * into the copies): copyBufferToBuffer through the scratch pages, as a pair may cross buffers.
   */
  private encodeSplitCopies(encoder: GPUCommandEncoder, copies: Uint32Array, localCopies?: Uint32Array): void {
    const scratch = this.copyScratch;
    if (scratch === null || (copies.length === 0 && !localCopies?.length)) return; // one buffer, or no pair
    const kBytes = pageBufferBytes(this.attention, this.attention.headDimQK);
    const vBytes = pageBufferBytes(this.attention, this.attention.headDimV);
    for (const L of this.layers) {
      const list = L.local ? localCopies : copies;
      if (!L.split || !list?.length) continue;
      const { k, v, pagesPerBuffer } = L.split;
      encodeSplitPageCopies(encoder, k, pagesPerBuffer, kBytes, list, scratch);
      if (v) encodeSplitPageCopies(encoder, v, pagesPerBuffer, vBytes, list, scratch);
    }
  }

  /** Every layer, in order, into one pass (WebGPU orders dispatches that share buffers). */
  private encode(pass: GPUComputePassEncoder, step: StepShape): void {
    const { k, spec } = this;
    const { T, logitRows, numWork } = step;
    const linear = (lin: Linear, M: number) => {
      if (M <= MATVEC_MAX_TOKENS) lin.kernels.gemv.encode(pass, lin.gemv, M);
      else lin.kernels.gemm.encode(pass, lin.gemm, M);
    };
    const mla = this.b.mla;
    // Copy-on-write first: a forked sequence's shared partial page, copied in every layer before
    // any append writes into the copy.
    for (const L of this.layers) {
      const n = L.local ? step.numLocalCopies : step.numCopies;
      if (L.copyK) k.copyK.encode(pass, L.copyK, n); // none over a split pool: encodeSplitCopies
      if (L.copyV) k.copyV!.encode(pass, L.copyV, n);
    }
    k.embedding.encode(pass, this.head.embed, T);
    this.layers.forEach((L, l) => {
      if (l === 0) k.normPlain.encode(pass, L.inputNorm, T); // later layers: fused into the previous MLP's end
      if (L.mla) {
        mla!.encodeProjections(pass, L.mla, T, linear); // q and the latent rows
      } else {
        linear(L.q!, T);
        linear(L.kProj!, T);
        linear(L.v!, T);
        if (spec.qkNorm) {
          k.headNorm!.encode(pass, L.qNorm!, T * spec.numHeads);
          k.headNorm!.encode(pass, L.kNorm!, T * spec.numKvHeads);
        }
      }
      // RoPE of the layer's kind: global, local (gemma3's sliding layers), none (smollm3's NoPE layers).
      if (L.rope === 'global') k.rope.encode(pass, this.head.rope, T);
      else if (L.rope === 'local') k.ropeLocal!.encode(pass, this.head.ropeLocal!, T);
      if (L.mla) mla!.encodeQuery(pass, L.mla, T); // [q_lat | q_pe]
      L.kernels.append.encode(pass, L.append, T);
      if (step.decode) {
        L.kernels.decode.encode(pass, L.decode, numWork);
        k.merge.encode(pass, this.head.merge, step.numSeqs);
      } else {
        L.kernels.prefill.encode(pass, L.attention, numWork);
      }
      if (L.mla) mla!.encodeOutput(pass, L.mla, T); // o_lat -> per-head outputs
      linear(L.o, T);
      if (L.postAttentionSandwich) k.normInPlace!.encode(pass, L.postAttentionSandwich, T); // gemma2/3
      k.normFused.encode(pass, L.postAttentionNorm, T);
      linear(L.gate, T);
      linear(L.up, T);
      k.act.encode(pass, this.head.act, T);
      linear(L.down, T);
      if (L.postFeedforwardSandwich) k.normInPlace!.encode(pass, L.postFeedforwardSandwich, T); // gemma2/3
      k.normFused.encode(pass, L.nextNorm, T);
    });
    if (step.logitRowsInOrder) {
      linear(this.head.lmHeadOnXn, logitRows); // the rows are xn's own, in order: no gather
    } else {
      k.gatherLast.encode(pass, this.head.gatherLast, logitRows);
      linear(this.head.lmHead, logitRows);
    }
  }

  /** Frees the model's GPU objects; a bound pool is its owner's to destroy. */
  destroy(): void {
    this.bindKv(null);
    for (const o of this.owned) o.destroy();
    this.weights.clear();
  }
}

/** What encode needs to know about a step. */
interface StepShape {
  T: number; // tokens
  logitRows: number;
  numWork: number; // work items of the attention kernel
  decode: boolean; // split-KV decode + merge instead of flashPrefill
  numSeqs: number;
  numCopies: number; // copy-on-write page pairs
  numLocalCopies: number; // copy-on-write page pairs of the sliding layers' pool (batch.local)
  logitRowsInOrder: boolean; // logit rows = 0..T-1: the LM head reads xn, no gatherLast
}

/** Whether the logit rows are exactly the step's T tokens in order (batch decode, allRows). */
function rowsInOrder(rows: Uint32Array, T: number): boolean {
  if (rows.length !== T) return false;
  for (let i = 0; i < T; i++) if (rows[i] !== i) return false;
  return true;
}

interface LayerBinds {
  inputNorm: GPUBindGroup;
  q?: Linear;
  kProj?: Linear;
  v?: Linear;
  mla?: MlaLayer<Linear>;
  qNorm?: GPUBindGroup;
  kNorm?: GPUBindGroup;
  /** Which RoPE the layer applies (the bind groups are the head's: one per RoPE, all layers). */
  rope: 'global' | 'local' | 'none';
  /** Bound to the sliding-window pool: writes batch.local's slots, reads its page indices. */
  local: boolean;
  /** The copyPages bind groups; none over a split pool (`split`: encodeSplitPageCopies instead). */
  copyK?: GPUBindGroup;
  copyV?: GPUBindGroup;
  /** Over a split pool: the layer's K and V buffers (V null for MLA) and the pages in each. */
  split?: { k: GPUBuffer[]; v: GPUBuffer[] | null; pagesPerBuffer: number };
  /** The attention / append kernels its bind groups were made by: the load's, or a split pool's. */
  kernels: AttentionKernels;
  append: GPUBindGroup;
  attention: GPUBindGroup;
  decode: GPUBindGroup;
  o: Linear;
  /** gemma2/3: post_attention_layernorm over the attention output, in place. */
  postAttentionSandwich?: GPUBindGroup;
  /** h += o; xn = post_attention_layernorm(h) (gemma2/3: pre_feedforward_layernorm(h)). */
  postAttentionNorm: GPUBindGroup;
  gate: Linear;
  up: Linear;
  down: Linear;
  /** gemma2/3: post_feedforward_layernorm over the MLP output, in place. */
  postFeedforwardSandwich?: GPUBindGroup;
  /** h += down; xn = the next layer's input norm, or the final norm after the last layer. */
  nextNorm: GPUBindGroup;
}

/** The layer's KV pages, and whether they are the sliding-window pool's (batch.local's slots and table). */
interface LayerKv {
  pages: PagedKvBuffers;
  local: boolean;
  /** Set for a split pool (KvPool.spec.pagesPerBuffer), of `buffers` buffers per layer. */
  pagesPerBuffer?: number;
  buffers: number;
}

function bindLayer(
  spec: ModelSpec,
  k: Kernels,
  a: AttentionKernels, // k's own, or a split pool's (Transformer.prepareKv)
  b: Buffers,
  kv: LayerKv,
  l: number,
  w: (n: string) => GPUBuffer,
  m: (n: string) => MatrixBuffers,
): LayerBinds {
  const p = `model.layers.${l}.`;
  // Each layer's weight picks the kernels of its own stored dtype (a GGUF mixes formats across layers).
  const linear = (role: Proj, weight: string, x: GPUBuffer, y: GPUBuffer, bias?: string): Linear => {
    const kernels = k.proj(role, weight);
    return {
      kernels,
      gemm: kernels.gemm.bind({ x, w: m(weight), bias: bias ? w(bias) : undefined, y, params: b.projParams[role]! }),
      gemv: kernels.gemv.bind({ x, w: m(weight), bias: bias ? w(bias) : undefined, y, params: b.projParams[role]! }),
    };
  };
  const mla = b.mla?.bindLayer(l, w, { xn: b.xn, query: b.q, attnOut: b.attn, tokens: b.tokens }, linear);
  const bias = (name: string) => (spec.attentionBias ? `${p}self_attn.${name}.bias` : undefined);
  const next = l + 1 < spec.numLayers ? `model.layers.${l + 1}.input_layernorm.weight` : 'model.norm.weight';
  const step = kv.local ? b.localGroup!.step : spec.layers[l].sliding && b.stepSliding ? b.stepSliding : b.step;
  const group = kv.local ? b.localGroup! : { slots: b.slots, copyPairs: b.copyPairs, copyCount: b.copyCount };
  const pages = kv.pages;
  // A split pool's buffers in order (KvPool pads kMore / vMore past the last with buffer 0).
  const ppb = kv.pagesPerBuffer;
  const split =
    ppb === undefined
      ? undefined
      : {
          k: [pages.kPages, ...pages.kMore!].slice(0, kv.buffers),
          v: k.copyV ? [pages.vPages, ...pages.vMore!].slice(0, kv.buffers) : null,
          pagesPerBuffer: ppb,
        };
  const sandwich = (weight: string) =>
    k.normInPlace?.bind({ x: b.sub, weight: w(`${p}${weight}.weight`), params: b.tokens });
  return {
    inputNorm: k.normPlain.bind({ x: b.h, weight: w(`${p}input_layernorm.weight`), y: b.xn, params: b.tokens }),
    q: mla ? undefined : linear('q', `${p}self_attn.q_proj.weight`, b.xn, b.q, bias('q_proj')),
    kProj: mla ? undefined : linear('k', `${p}self_attn.k_proj.weight`, b.xn, b.k!, bias('k_proj')),
    v: mla ? undefined : linear('v', `${p}self_attn.v_proj.weight`, b.xn, b.v!, bias('v_proj')),
    mla,
    qNorm: spec.qkNorm
      ? k.headNorm!.bind({ x: b.q, weight: w(`${p}self_attn.q_norm.weight`), params: b.qHeadRows })
      : undefined,
    kNorm: spec.qkNorm
      ? k.headNorm!.bind({ x: b.k!, weight: w(`${p}self_attn.k_norm.weight`), params: b.kHeadRows })
      : undefined,
    rope: spec.layers[l].rope,
    local: kv.local,
    // MLA appends the latent rows (one per token; no V).
    append: a.append.bind({
      newK: mla ? b.mla!.b.latent : b.k!,
      newV: mla ? undefined : b.v!,
      slotMapping: group.slots,
      pages,
      params: b.tokens,
    }),
    copyK: split ? undefined : k.copyK.bind({ pairs: group.copyPairs, pages: pages.kPages, params: group.copyCount }),
    copyV: split ? undefined : k.copyV?.bind({ pairs: group.copyPairs, pages: pages.vPages, params: group.copyCount }),
    split,
    kernels: a,
    attention: a.prefill.bind({ q: b.q, pages, step, work: b.work, out: b.attn, lse: b.lse }),
    decode: a.decode.bind({
      q: b.q,
      pages,
      step,
      work: b.work,
      partialO: b.partialO,
      partialML: b.partialML,
    }),
    o: linear('o', `${p}self_attn.o_proj.weight`, mla ? b.mla!.b.heads : b.attn, b.sub),
    postAttentionSandwich: spec.sandwichNorms ? sandwich('post_attention_layernorm') : undefined,
    postAttentionNorm: k.normFused.bind({
      x: b.sub,
      residual: b.h,
      weight: w(`${p}${spec.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}.weight`),
      y: b.xn,
      params: b.tokens,
    }),
    gate: linear('gate', `${p}mlp.gate_proj.weight`, b.xn, b.gate),
    up: linear('up', `${p}mlp.up_proj.weight`, b.xn, b.up),
    down: linear('down', `${p}mlp.down_proj.weight`, b.act, b.sub),
    postFeedforwardSandwich: spec.sandwichNorms ? sandwich('post_feedforward_layernorm') : undefined,
    nextNorm: k.normFused.bind({ x: b.sub, residual: b.h, weight: w(next), y: b.xn, params: b.tokens }),
  };
}

interface HeadBinds {
  embed: GPUBindGroup;
  rope: GPUBindGroup;
  ropeLocal?: GPUBindGroup;
  act: GPUBindGroup;
  gatherLast: GPUBindGroup;
  /** Split-KV partials -> attention output; the same buffers in every layer. */
  merge: GPUBindGroup;
  /** The LM head over the gathered rows (last), and over xn itself for a step whose rows are all its tokens. */
  lmHead: Linear;
  lmHeadOnXn: Linear;
}

function bindHead(
  spec: ModelSpec,
  k: Kernels,
  b: Buffers,
  m: (n: string) => MatrixBuffers, // a matrix: its buffer or row shards (weightMatrix)
): HeadBinds {
  const lm = spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const lmHead = (x: GPUBuffer): Linear => {
    const kernels = k.proj('lmHead', lm);
    const args = { x, w: m(lm), y: b.logits, params: b.projParams.lmHead! };
    return { kernels, gemm: kernels.gemm.bind(args), gemv: kernels.gemv.bind(args) };
  };
  return {
    embed: k.embedding.bind({ ids: b.ids, table: m('model.embed_tokens.weight'), out: b.h, params: b.tokens }),
    rope: b.mla
      ? k.rope.bind({ q: b.mla.b.q, k: b.mla.b.latent, positions: b.positions, invFreq: b.invFreq, params: b.tokens })
      : k.rope.bind({ q: b.q, k: b.k!, positions: b.positions, invFreq: b.invFreq, params: b.tokens }),
    ropeLocal: k.ropeLocal?.bind({
      q: b.q,
      k: b.k!,
      positions: b.positions,
      invFreq: b.invFreqLocal!,
      params: b.tokens,
    }),
    act: k.act.bind({ gate: b.gate, up: b.up, out: b.act, params: b.tokens }),
    gatherLast: k.gatherLast.bind({ ids: b.lastRows, table: b.xn, out: b.last, params: b.lastTokens }),
    merge: k.merge.bind({
      partialO: b.partialO,
      partialML: b.partialML,
      slotIndptr: b.slotIndptr,
      qoIndptr: b.step.qoIndptr,
      out: b.attn,
      lse: b.lse,
    }),
    lmHead: lmHead(b.last),
    lmHeadOnXn: lmHead(b.xn),
  };
}

/**
 * A GPU-free stand-in for Transformer with the same forward() contract over a real
 * KvCacheManager: refuses what does not fit before changing anything, registers unknown
 * sequences, reserves slots (with the ids, like the model) and returns one logits row per
 * sequence. Row values depend only on (position, token) of the last new token, so a sequence
 * recomputed after preemption or served from the prefix cache gets the same rows.
 */
import { KvCacheManager } from '../../src/kv/kvCacheManager';
import type { EngineModel } from '../../src/engine/engine';
import type { StepSequence } from '../../src/model/transformer';

export interface FakeOptions {
  vocabSize: number;
  pageSize: number;
  numPages: number;
  maxTokens: number;
  maxSeqs: number;
  maxContext: number;
  /** Logit bonus of these ids (e.g. EOS) so some requests stop early. */
  boost?: Map<number, number>;
}

function hash(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35) ^ Math.imul(c + 0x165667b1, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 4294967296;
}

export class FakeModel implements EngineModel {
  readonly cache: KvCacheManager;
  readonly opts: EngineModel['opts'];
  readonly spec: { vocabSize: number };
  readonly pool: { totalBytes: number };
  steps = 0;
  forwardedTokens = 0;
  /** Throw from forward when a sequence feeds this token id (a failing step). */
  poisonToken = -1;

  constructor(private readonly o: FakeOptions) {
    this.cache = new KvCacheManager({ numPages: o.numPages, pageSize: o.pageSize });
    this.opts = { pageSize: o.pageSize, maxTokens: o.maxTokens, maxSeqs: o.maxSeqs, maxLogitRows: o.maxSeqs, maxContext: o.maxContext, numPages: o.numPages };
    this.spec = { vocabSize: o.vocabSize };
    this.pool = { totalBytes: o.numPages * 1024 };
  }

  async forward(seqs: readonly StepSequence[]): Promise<Float32Array> {
    const T = seqs.reduce((n, s) => n + s.tokenIds.length, 0);
    if (seqs.length === 0 || seqs.length > this.opts.maxSeqs) throw new Error(`fake forward: ${seqs.length} sequences`);
    if (T > this.opts.maxTokens) throw new Error(`fake forward: ${T} tokens`);
    let pages = 0;
    for (const s of seqs) {
      if (s.tokenIds.length === 0) throw new Error(`fake forward: sequence ${s.seqId} has no new tokens`);
      const len = (this.cache.has(s.seqId) ? this.cache.seqLen(s.seqId) : 0) + s.tokenIds.length;
      if (len > this.opts.maxContext) throw new Error(`fake forward: sequence ${s.seqId} reaches ${len}`);
      pages += this.cache.has(s.seqId) ? this.cache.pagesNeeded(s.seqId, s.tokenIds.length) : Math.ceil(s.tokenIds.length / this.opts.pageSize);
    }
    if (pages > this.cache.stats().freePages) throw new Error(`fake forward: ${pages} pages needed, ${this.cache.stats().freePages} free`);
    if (seqs.some((s) => s.tokenIds.includes(this.poisonToken))) throw new Error('fake forward: poisoned step');
    const V = this.o.vocabSize;
    const out = new Float32Array(seqs.length * V);
    seqs.forEach((s, i) => {
      if (!this.cache.has(s.seqId)) this.cache.addSequence(s.seqId);
      const start = this.cache.seqLen(s.seqId);
      const r = this.cache.appendSlots(s.seqId, s.tokenIds.length, s.tokenIds);
      if (!r.ok) throw new Error(`fake forward: ${r.reason}`);
      const pos = start + s.tokenIds.length - 1;
      const tok = s.tokenIds[s.tokenIds.length - 1];
      for (let v = 0; v < V; v++) out[i * V + v] = 4 * hash(pos, tok, v) + (this.o.boost?.get(v) ?? 0);
    });
    this.steps++;
    this.forwardedTokens += T;
    await Promise.resolve();
    return out;
  }
}

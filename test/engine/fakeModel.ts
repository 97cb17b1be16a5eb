/**
 * A GPU-free stand-in for Transformer with the same forward(batch) contract and no KV bookkeeping
 * (the engine's scheduler owns that): it refuses a batch that does not fit its sizes and returns
 * one logits row per logit row of the batch. Row values depend only on (position, token) of the
 * row's token, so a sequence recomputed after preemption or served from the prefix cache gets the
 * same rows.
 */
import type { EngineModel } from '../../src/engine/engine';
import type { StepBatch } from '../../src/kernels/stepBatch';

export interface FakeOptions {
  vocabSize: number;
  pageSize: number;
  /** Given to the Engine (the fake holds no pages). */
  numPages: number;
  maxTokens: number;
  maxSeqs: number;
  maxContext: number;
  /** Logit bonus of these ids (e.g. EOS) so some requests stop early. */
  boost?: Map<number, number>;
}

function hash(a: number, b: number, c: number): number {
  let h =
    Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^
    Math.imul(b + 0x632be5ab, 0xc2b2ae35) ^
    Math.imul(c + 0x165667b1, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 4294967296;
}

export class FakeModel implements EngineModel {
  readonly opts: EngineModel['opts'];
  readonly spec: { vocabSize: number };
  steps = 0;
  forwardedTokens = 0;
  /** Throw from forward when a sequence feeds this token id (a failing step). */
  poisonToken = -1;
  /** A logits row after this token id holds `nonFiniteValue` (NaN weights, an overflow). */
  nonFiniteToken = -1;
  nonFiniteValue = Number.NaN;
  /** While set, forward waits for it (a step that takes as long as a test wants). */
  gate: Promise<void> | null = null;

  constructor(private readonly o: FakeOptions) {
    this.opts = {
      pageSize: o.pageSize,
      maxTokens: o.maxTokens,
      maxSeqs: o.maxSeqs,
      maxLogitRows: o.maxSeqs,
      maxContext: o.maxContext,
    };
    this.spec = { vocabSize: o.vocabSize };
  }

  async forward(batch: StepBatch): Promise<Float32Array> {
    const { tokenIds, positions, pageTable, logitRows } = batch;
    const T = tokenIds.length;
    const n = pageTable.numSeqs;
    if (n === 0 || n > this.opts.maxSeqs) throw new Error(`fake forward: ${n} sequences`);
    if (T === 0 || T > this.opts.maxTokens) throw new Error(`fake forward: ${T} tokens`);
    if (logitRows.length > this.opts.maxLogitRows) throw new Error(`fake forward: ${logitRows.length} logit rows`);
    if (pageTable.kvLens.some((len) => len > this.opts.maxContext)) throw new Error('fake forward: past the context');
    if (tokenIds.includes(this.poisonToken)) throw new Error('fake forward: poisoned step');
    const V = this.o.vocabSize;
    const out = new Float32Array(logitRows.length * V);
    logitRows.forEach((t, r) => {
      for (let v = 0; v < V; v++) out[r * V + v] = 4 * hash(positions[t], tokenIds[t], v) + (this.o.boost?.get(v) ?? 0);
      if (tokenIds[t] === this.nonFiniteToken) out[r * V + (tokenIds[t] % V)] = this.nonFiniteValue;
    });
    if (this.gate) await this.gate;
    this.steps++;
    this.forwardedTokens += T;
    await Promise.resolve();
    return out;
  }
}

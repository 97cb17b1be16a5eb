import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  applyMinP,
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
} from '../../src/model/logitsProcessors';
import { argmax, Sampler, sampleCategorical, SeededRandom } from '../../src/model/sampler';
import { StoppingCriteria, StopStringMatcher } from '../../src/model/stoppingCriteria';

const kept = (logits: Float32Array) => [...logits.keys()].filter((i) => logits[i] !== -Infinity);

function randomLogits(rng: SeededRandom, n: number, scale = 4): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * scale;
  return out;
}

function softmax64(logits: Float32Array): number[] {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
}

/** Draws `draws` tokens and returns the chi-square statistic against `expected` probabilities. */
function chiSquare(counts: number[], expected: number[], draws: number): number {
  let chi = 0;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] === 0) {
      expect(counts[i]).toBe(0);
      continue;
    }
    const e = expected[i] * draws;
    chi += (counts[i] - e) ** 2 / e;
  }
  return chi;
}

// Chi-square critical values at significance 0.001 by degrees of freedom (the draws are seeded,
// so each check is deterministic; the bound says the sampler's distribution is the intended one).
const CHI2_999 = [0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12];

describe('logits processors (worked examples from the docs)', () => {
  it('repetition penalty divides positive and multiplies negative logits, each seen token once', () => {
    const logits = new Float32Array([2, -1, 3]);
    applyRepetitionPenalty(logits, [0, 1, 1], 2);
    expect([...logits]).toEqual([1, -2, 3]);
    const same = new Float32Array([2, -1, 3]);
    applyRepetitionPenalty(same, [0, 1], 1);
    expect([...same]).toEqual([2, -1, 3]);
  });

  it('temperature scales logits', () => {
    const logits = new Float32Array([2, 1]);
    applyTemperature(logits, 0.5);
    expect([...logits]).toEqual([4, 2]);
    expect(() => applyTemperature(logits, 0)).toThrow(RangeError);
  });

  it('top-k keeps exactly the k largest (and ties with the k-th)', () => {
    const scratch = new Float32Array(8);
    const a = new Float32Array([1, 5, 3, 4]);
    applyTopK(a, 2, scratch);
    expect([...a]).toEqual([-Infinity, 5, -Infinity, 4]);
    const ties = new Float32Array([1, 3, 3, 2]);
    applyTopK(ties, 1, scratch);
    expect(kept(ties)).toEqual([1, 2]);
    const off = new Float32Array([1, 2, 3]);
    applyTopK(off, 0, scratch);
    applyTopK(off, 3, scratch);
    expect(kept(off)).toEqual([0, 1, 2]);
  });

  it('top-k matches a sort on random logits', () => {
    const rng = new SeededRandom(7);
    for (const n of [2, 17, 1000]) {
      const scratch = new Float32Array(n);
      for (const k of [1, 2, 5, n - 1]) {
        const logits = randomLogits(rng, n);
        const expected = [...logits.keys()]
          .sort((x, y) => logits[y] - logits[x])
          .slice(0, k)
          .sort((x, y) => x - y);
        applyTopK(logits, k, scratch);
        expect(kept(logits)).toEqual(expected);
      }
    }
  });

  it('top-p keeps the smallest most-likely set reaching p', () => {
    const probs = new Float32Array(4);
    const order = new Uint32Array(4);
    const run = (p: number, values = [2, 1, 0, -1]) => {
      const logits = new Float32Array(values);
      applyTopP(logits, p, probs, order);
      return kept(logits);
    };
    expect(run(0.8)).toEqual([0, 1]); // 0.644 < 0.8 ≤ 0.644 + 0.237
    expect(run(0.6)).toEqual([0]);
    expect(run(0.95)).toEqual([0, 1, 2]);
    expect(run(1)).toEqual([0, 1, 2, 3]);
    expect(run(1e-6)).toEqual([0]);
    expect(run(0.3, [1, 1, 1, 1])).toEqual([0, 1, 2, 3]); // ties with the last kept token stay
    expect(run(0.5, [-Infinity, 0, -Infinity, 0])).toEqual([1, 3]);
  });

  it('top-p matches a sort on random logits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600 }),
        fc.double({ min: 0.01, max: 0.99, noNaN: true }),
        fc.integer(),
        (n, p, seed) => {
          const logits = randomLogits(new SeededRandom(seed), n, 6);
          const pr = softmax64(logits);
          const sorted = [...logits.keys()].sort((x, y) => pr[y] - pr[x]);
          // Reference (HF): keep a token when the mass of the tokens ranked above it is < p.
          const expected: number[] = [];
          let above = 0;
          for (const i of sorted) {
            if (Math.abs(above - p) < 1e-4) return; // too close to call in f32; skip the case
            if (above < p) expected.push(i);
            above += pr[i];
          }
          applyTopP(logits, p, new Float32Array(n), new Uint32Array(n));
          expect(kept(logits)).toEqual(expected.sort((x, y) => x - y));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('min-p keeps tokens at least minP times as likely as the best', () => {
    const logits = new Float32Array([2, 1, 0, -1]);
    applyMinP(logits, 0.3); // threshold 2 + ln 0.3 = 0.796
    expect(kept(logits)).toEqual([0, 1]);
    const rng = new SeededRandom(3);
    for (const minP of [0.01, 0.1, 0.5, 0.9]) {
      const l = randomLogits(rng, 500);
      const pr = softmax64(l);
      const best = Math.max(...pr);
      const expected = [...l.keys()].filter((i) => pr[i] >= minP * best);
      applyMinP(l, minP);
      expect(kept(l)).toEqual(expected);
    }
  });
});

describe('samplers', () => {
  it('argmax picks the largest logit, the first on ties', () => {
    expect(argmax(new Float32Array([0, 3, 3, 1]))).toBe(1);
    expect(argmax(new Float32Array([-Infinity, -5, -Infinity]))).toBe(1);
  });

  it("greedy (temperature 0) picks argmax and leaves the caller's logits alone", () => {
    const rng = new SeededRandom(11);
    const sampler = new Sampler(300, { temperature: 0, topK: 5, topP: 0.5 });
    for (let t = 0; t < 50; t++) {
      const logits = randomLogits(rng, 300);
      const copy = logits.slice();
      let best = 0;
      for (let i = 1; i < 300; i++) if (logits[i] > logits[best]) best = i;
      expect(sampler.sample(logits)).toBe(best);
      expect(logits).toEqual(copy);
    }
  });

  it('greedy applies the repetition penalty first', () => {
    const sampler = new Sampler(3, { temperature: 0, repetitionPenalty: 4 });
    expect(sampler.sample(new Float32Array([2, 1, 0]))).toBe(0);
    expect(sampler.sample(new Float32Array([2, 1, 0]), [0])).toBe(1); // 2 / 4 = 0.5 < 1
  });

  it('sampleCategorical follows the cumulative distribution (worked example)', () => {
    const logits = new Float32Array([0, Math.log(3)]);
    expect(sampleCategorical(logits, 0.2)).toBe(0);
    expect(sampleCategorical(logits, 0.3)).toBe(1);
    expect(sampleCategorical(new Float32Array([-Infinity, 0, -Infinity]), 0.999999)).toBe(1);
    expect(() => sampleCategorical(new Float32Array([-Infinity, -Infinity]), 0.5)).toThrow(/filtered out/);
  });

  it('the same seed gives the same tokens; another seed other tokens', () => {
    const rng = new SeededRandom(5);
    const rows = Array.from({ length: 200 }, () => randomLogits(rng, 64, 2));
    const run = (seed: number) => {
      const s = new Sampler(64, { temperature: 0.9, topK: 40, topP: 0.95, minP: 0.01, repetitionPenalty: 1.1, seed });
      const out: number[] = [];
      for (const row of rows) out.push(s.sample(row, out));
      return out;
    };
    expect(run(1234)).toEqual(run(1234));
    expect(run(1234)).not.toEqual(run(4321));
    expect(new SeededRandom(42).next()).toBe(new SeededRandom(42).next());
  });

  it('temperature → 0 tends to greedy', () => {
    const logits = new Float32Array([0.5, 1.5, 1.0, -2]); // argmax 1, gap 0.5 to the next
    const share = (temperature: number) => {
      const s = new Sampler(4, { temperature, seed: 9 });
      let hits = 0;
      for (let i = 0; i < 2000; i++) if (s.sample(logits) === 1) hits++;
      return hits / 2000;
    };
    const shares = [1, 0.5, 0.2, 0.05, 0.01].map(share);
    for (let i = 1; i < shares.length; i++) expect(shares[i]).toBeGreaterThanOrEqual(shares[i - 1]);
    expect(shares[0]).toBeLessThan(0.6);
    expect(shares[4]).toBe(1); // other tokens have probability < e^-50
  });

  it('the categorical sampler draws the softmax distribution (chi-square)', () => {
    const probs = [0.1, 0.2, 0.3, 0.15, 0.25];
    const logits = new Float32Array(probs.map(Math.log));
    const sampler = new Sampler(5, { seed: 2024 });
    const draws = 100_000;
    const counts = new Array(5).fill(0);
    for (let i = 0; i < draws; i++) counts[sampler.sample(logits)]++;
    expect(chiSquare(counts, probs, draws)).toBeLessThan(CHI2_999[4]);
  });

  it('after temperature, top-k and top-p the draws follow the renormalised kept set (chi-square)', () => {
    const probs = [0.05, 0.2, 0.3, 0.1, 0.25, 0.1];
    const logits = new Float32Array(probs.map(Math.log));
    // Temperature 0.5 squares the probabilities: 0.0025, 0.04, 0.09, 0.01, 0.0625, 0.01 (sum 0.215)
    // → 0.0116, 0.186, 0.419, 0.0465, 0.291, 0.0465. Top-k 4 keeps 2, 4, 1 and both tokens tied
    // at 0.0465 (3 and 5). Top-p 0.8 then keeps 2 (mass above 0), 4 (0.42) and 1 (0.71 < 0.8).
    const sq = probs.map((p) => p * p);
    const keptSet = [1, 2, 4];
    const mass = keptSet.reduce((a, i) => a + sq[i], 0);
    const expected = probs.map((_, i) => (keptSet.includes(i) ? sq[i] / mass : 0));
    const sampler = new Sampler(6, { temperature: 0.5, topK: 4, topP: 0.8, seed: 77 });
    const draws = 60_000;
    const counts = new Array(6).fill(0);
    for (let i = 0; i < draws; i++) counts[sampler.sample(logits)]++;
    expect(chiSquare(counts, expected, draws)).toBeLessThan(CHI2_999[2]);
  });

  it('rejects bad parameters and mismatched logits', () => {
    expect(() => new Sampler(0)).toThrow(RangeError);
    expect(() => new Sampler(4, { temperature: -1 })).toThrow(/temperature/);
    expect(() => new Sampler(4, { topK: 1.5 })).toThrow(/topK/);
    expect(() => new Sampler(4, { topP: 0 })).toThrow(/topP/);
    expect(() => new Sampler(4, { minP: 2 })).toThrow(/minP/);
    expect(() => new Sampler(4, { repetitionPenalty: 0 })).toThrow(/repetitionPenalty/);
    expect(() => new Sampler(4).sample(new Float32Array(5))).toThrow(/expects 4/);
    expect(() => new Sampler(4).sample(new Float32Array([0, 1, NaN, 2]))).toThrow(
      'sampling: logits hold NaN (token 2 is the first)',
    );
  });
});

describe('stopping criteria', () => {
  it('finds a stop string split over tokens and never shows part of it', () => {
    const m = new StopStringMatcher(['\nUser:']);
    expect(m.push('Hi\nUs')).toEqual({ text: 'Hi', stopped: false });
    expect(m.push('er: x')).toEqual({ text: '', stopped: true, stopString: '\nUser:' });
  });

  it('releases held text once it can no longer become a stop string', () => {
    const m = new StopStringMatcher(['\nUser:']);
    expect(m.push('Hi\nUs').text).toBe('Hi');
    expect(m.push('ed')).toEqual({ text: '\nUsed', stopped: false });
    expect(m.push('\n').text).toBe('');
    expect(m.flush()).toBe('\n');
  });

  it('stops at the earliest of several stop strings', () => {
    const m = new StopStringMatcher(['END', 'b']);
    expect(m.push('aEN')).toEqual({ text: 'a', stopped: false });
    expect(m.push('Db')).toEqual({ text: '', stopped: true, stopString: 'END' }); // 'END' at 0 beats 'b' at 3
  });

  it('emits exactly the text before the first stop string, however it is split', () => {
    const stops = ['END', '\n\n', 'ababc'];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'b', 'c', 'E', 'N', 'D', '\n', ' ', 'x'), { maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 4 })),
        (letters, cuts) => {
          const text = letters.join('');
          const chunks: string[] = [];
          let at = 0;
          for (const c of cuts) {
            if (at >= text.length) break;
            chunks.push(text.slice(at, at + c));
            at += c;
          }
          if (at < text.length) chunks.push(text.slice(at));
          let first = text.length;
          for (const s of stops) {
            const i = text.indexOf(s);
            if (i >= 0) first = Math.min(first, i);
          }
          const m = new StopStringMatcher(stops);
          let out = '';
          let stopped = false;
          for (const c of chunks) {
            const r = m.push(c);
            out += r.text;
            if (r.stopped) {
              stopped = true;
              break;
            }
          }
          if (!stopped) out += m.flush();
          expect(stopped).toBe(first < text.length);
          expect(out).toBe(text.slice(0, first));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('StoppingCriteria: stop string across three tokens (worked example)', () => {
    const c = new StoppingCriteria({ eosTokenIds: [2], maxNewTokens: 3, stopStrings: ['END'] });
    expect(c.step(5, 'aE')).toEqual({ text: 'a', stop: null });
    expect(c.step(6, 'N')).toEqual({ text: '', stop: null });
    expect(c.step(7, 'D!')).toEqual({ text: '', stop: 'stop_string' });
  });

  it('StoppingCriteria: EOS releases held text and shows nothing itself', () => {
    const c = new StoppingCriteria({ eosTokenIds: [2, 9], stopStrings: ['END'] });
    expect(c.step(5, 'aE')).toEqual({ text: 'a', stop: null });
    expect(c.isEos(9)).toBe(true);
    expect(c.step(9, '<eos>')).toEqual({ text: 'E', stop: 'eos' });
  });

  it('StoppingCriteria: max tokens counts every token and releases held text', () => {
    const c = new StoppingCriteria({ maxNewTokens: 3, stopStrings: ['END'] });
    expect(c.step(5, 'x').stop).toBeNull();
    expect(c.step(6, 'y').stop).toBeNull();
    expect(c.step(7, 'zEN')).toEqual({ text: 'zEN', stop: 'max_tokens' });
    expect(c.tokensGenerated).toBe(3);
    expect(() => new StoppingCriteria({ maxNewTokens: 0 })).toThrow(RangeError);
  });
});

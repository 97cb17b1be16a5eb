import { describe, expect, it } from 'vitest';
import { CaseError, parseAttentionCase } from '../../src/cli/attentionCase';
import { parseSafetensors, writeSafetensors, type TensorToWrite } from '../../src/sources/safetensors';

// GQA, two sequences: a prefill of 3 queries over 5 keys and a decode of 1 over 6.
const META = {
  numHeads: '4',
  numKvHeads: '2',
  headDimQK: '8',
  headDimV: '4',
  seqLensQ: '[3,1]',
  seqLensKV: '[5,6]',
  causal: '1',
};
const Tq = 4;
const Tk = 11;

const f32 = (shape: number[]): TensorToWrite => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, data: Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1)) };
};

function caseFile(
  meta: Record<string, string | undefined> = {},
  tensors: Record<string, TensorToWrite | undefined> = {},
) {
  const m = { ...META, ...meta };
  const t = { q: f32([Tq, 4, 8]), k: f32([Tk, 2, 8]), v: f32([Tk, 2, 4]), ...tensors };
  const metaOut: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (v !== undefined) metaOut[k] = v;
  const tOut: Record<string, TensorToWrite> = {};
  for (const [k, v] of Object.entries(t)) if (v !== undefined) tOut[k] = v;
  return parseSafetensors(writeSafetensors(tOut, metaOut), 'case.safetensors');
}

function fieldOf(fn: () => unknown): { field: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CaseError);
    const err = e as CaseError;
    expect(err.message).not.toContain('\n');
    return { field: err.field, message: err.message };
  }
  throw new Error('expected a CaseError');
}

describe('parseAttentionCase', () => {
  it('reads a valid case', () => {
    const a = parseAttentionCase(caseFile());
    expect(a).toMatchObject({
      numHeads: 4,
      numKvHeads: 2,
      headDimQK: 8,
      headDimV: 4,
      seqLensQ: [3, 1],
      seqLensKV: [5, 6],
      causal: true,
    });
    expect(a.scale).toBeUndefined();
    expect(a.window).toBeUndefined();
    expect(a.q.length).toBe(Tq * 4 * 8);
    expect(a.k!.length).toBe(Tk * 2 * 8);
    expect(a.v!.length).toBe(Tk * 2 * 4);
    expect(a.q[0]).toBeCloseTo(Math.sin(1), 6);
  });

  it('reads the optional fields, non-causal, and widens F16 tensors', () => {
    const v16: TensorToWrite = { dtype: 'F16', shape: [Tk, 2, 4], data: new Float32Array(Tk * 8).fill(0.5) };
    const a = parseAttentionCase(caseFile({ causal: '0', scale: '0.125', window: '4' }, { v: v16 }));
    expect(a.causal).toBe(false);
    expect(a.scale).toBe(0.125);
    expect(a.window).toBe(4);
    expect([...a.v!.subarray(0, 3)]).toEqual([0.5, 0.5, 0.5]);
    expect(parseAttentionCase(caseFile({ window: '0', scale: '1e-1' }))).toMatchObject({ window: 0, scale: 0.1 });
  });

  it('accepts empty sequences where the lengths allow', () => {
    const a = parseAttentionCase(caseFile({ seqLensQ: '[0,3,1]', seqLensKV: '[0,5,6]' }));
    expect(a.seqLensQ).toEqual([0, 3, 1]);
  });

  const bad: [string, Record<string, string | undefined>, Record<string, TensorToWrite | undefined>, string, RegExp][] =
    [
      ['numHeads missing', { numHeads: undefined }, {}, 'numHeads', /missing from __metadata__/],
      ['numHeads not a number', { numHeads: 'four' }, {}, 'numHeads', /integer >= 1, got "four"/],
      ['numHeads zero', { numHeads: '0' }, {}, 'numHeads', /integer >= 1/],
      ['numHeads negative', { numHeads: '-4' }, {}, 'numHeads', /integer >= 1/],
      ['numHeads fractional', { numHeads: '4.0' }, {}, 'numHeads', /integer >= 1/],
      ['numHeads with spaces', { numHeads: ' 4' }, {}, 'numHeads', /integer >= 1/],
      ['numHeads huge', { numHeads: '99999999999999999999' }, {}, 'numHeads', /integer >= 1/],
      ['numKvHeads missing', { numKvHeads: undefined }, {}, 'numKvHeads', /missing/],
      ['numKvHeads hex', { numKvHeads: '0x2' }, {}, 'numKvHeads', /integer/],
      ['numKvHeads not dividing', { numKvHeads: '3' }, {}, 'numKvHeads', /3 does not divide numHeads 4/],
      ['headDimQK missing', { headDimQK: undefined }, {}, 'headDimQK', /missing/],
      ['headDimQK empty', { headDimQK: '' }, {}, 'headDimQK', /integer/],
      ['headDimV missing', { headDimV: undefined }, {}, 'headDimV', /missing/],
      ['headDimV bad', { headDimV: 'NaN' }, {}, 'headDimV', /integer/],
      ['seqLensQ missing', { seqLensQ: undefined }, {}, 'seqLensQ', /missing/],
      ['seqLensQ bad JSON', { seqLensQ: '[3,1' }, {}, 'seqLensQ', /not JSON/],
      ['seqLensQ not an array', { seqLensQ: '4' }, {}, 'seqLensQ', /JSON array/],
      ['seqLensQ empty', { seqLensQ: '[]', seqLensKV: '[]' }, {}, 'seqLensQ', /at least one sequence/],
      ['seqLensQ negative', { seqLensQ: '[5,-1]' }, {}, 'seqLensQ[1]', /non-negative integer, got -1/],
      ['seqLensQ fractional', { seqLensQ: '[2.5,1.5]' }, {}, 'seqLensQ[0]', /non-negative integer, got 2.5/],
      ['seqLensQ string entry', { seqLensQ: '["3",1]' }, {}, 'seqLensQ[0]', /got "3"/],
      ['seqLensKV missing', { seqLensKV: undefined }, {}, 'seqLensKV', /missing/],
      ['seqLensKV null entry', { seqLensKV: '[5,null]' }, {}, 'seqLensKV[1]', /got null/],
      ['seqLensKV count differs', { seqLensKV: '[11]' }, {}, 'seqLensKV', /has 1 sequences but seqLensQ has 2/],
      [
        'more queries than keys',
        { seqLensQ: '[1,3]', seqLensKV: '[9,2]' },
        {},
        'seqLensQ[1]',
        /3 queries exceed seqLensKV\[1\] = 2/,
      ],
      ['causal missing', { causal: undefined }, {}, 'causal', /missing/],
      ['causal word', { causal: 'true' }, {}, 'causal', /must be "1" or "0", got "true"/],
      ['scale not a number', { scale: 'abc' }, {}, 'scale', /positive finite number, got "abc"/],
      ['scale infinite', { scale: '1e999' }, {}, 'scale', /positive finite/],
      ['scale zero', { scale: '0' }, {}, 'scale', /positive finite/],
      ['scale empty', { scale: '' }, {}, 'scale', /positive finite/],
      ['window negative', { window: '-1' }, {}, 'window', /integer >= 0, got "-1"/],
      ['window fractional', { window: '2.5' }, {}, 'window', /integer >= 0/],
      ['q missing', {}, { q: undefined }, 'q', /tensor is missing/],
      ['k missing', {}, { k: undefined }, 'k', /tensor is missing/],
      ['v missing', {}, { v: undefined }, 'v', /tensor is missing/],
      [
        'q rows disagree with seqLensQ',
        {},
        { q: f32([5, 4, 8]) },
        'q',
        /shape \[5, 4, 8\] does not match \[Tq=sum\(seqLensQ\)=4, numHeads=4, headDimQK=8\]/,
      ],
      ['q heads disagree', {}, { q: f32([Tq, 2, 8]) }, 'q', /numHeads=4/],
      ['q rank 2', {}, { q: f32([Tq, 32]) }, 'q', /shape \[4, 32\] does not match/],
      ['k rows disagree with seqLensKV', { seqLensKV: '[5,7]' }, {}, 'k', /Tk=sum\(seqLensKV\)=12/],
      ['k heads disagree', {}, { k: f32([Tk, 4, 8]) }, 'k', /numKvHeads=2/],
      ['k dim disagrees', { headDimQK: '4' }, { q: f32([Tq, 4, 4]) }, 'k', /headDimQK=4/],
      ['v dim disagrees', {}, { v: f32([Tk, 2, 8]) }, 'v', /headDimV=4/],
      ['v rows disagree', {}, { v: f32([Tk - 1, 2, 4]) }, 'v', /Tk=sum\(seqLensKV\)=11/],
    ];
  for (const [what, meta, tensors, field, message] of bad) {
    it(`${what} → names ${field}`, () => {
      const r = fieldOf(() => parseAttentionCase(caseFile(meta, tensors)));
      expect(r.field).toBe(field);
      expect(r.message.startsWith(`${field}: `)).toBe(true);
      expect(r.message).toMatch(message);
    });
  }

  it('an integer dtype names the tensor', () => {
    // hand-made I32 tensor in place of q
    const good = caseFile();
    const t = good.tensors.get('q')!;
    good.tensors.set('q', { ...t, dtype: 'I32' });
    const r = fieldOf(() => parseAttentionCase(good));
    expect(r.field).toBe('q');
    expect(r.message).toMatch(/dtype I32: must be F32/);
  });
});

/**
 * Kernels that read KV pages are composed with one row reader per page format (kvPagesFloat /
 * kvPagesQ8 / kvPagesQ4.wgsl) and one page layout that declares the page bindings and says which
 * buffer holds a page (kvPagesOneBuffer / kvPagesSplit.wgsl); q8 / q4 pages need the f32 word (they
 * dequantise to f32), and the pipeline cache key names the page format.
 */
import { describe, expect, it } from 'vitest';
import { kernelSource, kvPagesFormat } from '../../src/kernels/sources';

describe('KV page snippets', () => {
  it('composes the page snippet after the word4 snippet, float by default', () => {
    const files = (s: ReturnType<typeof kernelSource>) => s.parts.map((p) => p.file);
    expect(files(kernelSource('naiveScores', { word: 'f16' }))).toContain('shaders/attention/kvPagesFloat.wgsl');
    const q4 = kernelSource('splitKvDecode', { word: 'f32', kv: 'q4' });
    expect(files(q4).indexOf('shaders/attention/kvPagesQ4.wgsl')).toBeGreaterThan(
      files(q4).indexOf('shaders/common/word4F32.wgsl'),
    );
    expect(q4.variant).toBe('f32+kvq4');
    expect(kernelSource('flashPrefill', { word: 'f32', kv: 'q8' }).variant).toBe('f32+kvq8');
    expect(kernelSource('flashPrefill', { word: 'f32' }).variant).toBe('f32'); // cache keys of float pages unchanged
  });

  it('refuses q8 / q4 pages without the f32 word, and a page format for a kernel without pages', () => {
    expect(() => kernelSource('mlaDecode', { word: 'f16packed', kv: 'q8' })).toThrow(/need the f32 word/);
    expect(() => kernelSource('copyPages', { kv: 'q4' })).toThrow(/reads no KV pages/);
  });

  it('composes one row reader per format with one page layout (one buffer or split); kvAppend neither', () => {
    const files = (s: ReturnType<typeof kernelSource>) => s.parts.map((p) => p.file);
    for (const [kv, reader] of [
      ['float', 'kvPagesFloat'],
      ['q8', 'kvPagesQ8'],
      ['q4', 'kvPagesQ4'],
    ] as const) {
      for (const split of [false, true]) {
        const got = files(kernelSource('flashPrefill', { word: 'f32', kv, split }));
        const layout = split ? 'kvPagesSplit' : 'kvPagesOneBuffer';
        expect(got.filter((f) => f.includes('/kvPages'))).toEqual([
          `shaders/attention/${reader}.wgsl`,
          `shaders/attention/${layout}.wgsl`,
        ]);
      }
    }
    // kvAppend writes a split pool one buffer per dispatch: one source, the store then the range snippet.
    expect(files(kernelSource('kvAppendQuant')).slice(0, 2)).toEqual([
      'shaders/kv/kvPagesWriteQuant.wgsl',
      'shaders/kv/kvPagesWriteRange.wgsl',
    ]);
    expect(() => kernelSource('kvAppend', { word: 'f16', split: true })).toThrow(/one buffer per dispatch/);
  });

  it('maps KV dtypes to page formats', () => {
    expect(['f32', 'f16', 'q8', 'q4'].map((d) => kvPagesFormat(d as 'f32'))).toEqual(['float', 'float', 'q8', 'q4']);
  });
});

/**
 * Kernels that read KV pages are composed with one KV page snippet (kvPagesFloat / kvPagesQ8 /
 * kvPagesQ4.wgsl) that declares the page bindings and the row readers; q8 / q4 pages need the f32
 * word (they dequantise to f32), and the pipeline cache key names the page format.
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

  it('maps KV dtypes to page formats', () => {
    expect(['f32', 'f16', 'q8', 'q4'].map((d) => kvPagesFormat(d as 'f32'))).toEqual(['float', 'float', 'q8', 'q4']);
  });
});

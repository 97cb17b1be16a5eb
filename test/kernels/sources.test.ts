/** Kernel assembly (src/kernels/sources.ts): every kernel composes, and snippet headers are checked. */
import { describe, expect, it } from 'vitest';
import { allKernelSources, checkKernelParts, kernelSource } from '../../src/kernels/sources';

describe('kernel sources', () => {
  it('assembles every kernel in every variant, each part a shaders/ file, directives first', () => {
    const all = allKernelSources();
    expect(all.length).toBeGreaterThan(20);
    for (const src of all) {
      const code = src.parts.map((p) => p.code).join('\n');
      expect(code).toMatch(/fn main\(/);
      // Every `enable` directive sits before the first declaration.
      const firstDecl = code.search(/^(alias|struct|fn|override|const|var|@group)/m);
      const lastEnable = Math.max(...[...code.matchAll(/^enable \w+;/gm)].map((m) => m.index ?? -1), -1);
      expect(lastEnable).toBeLessThan(firstDecl);
    }
    expect(new Set(all.map((s) => `${s.name}/${s.variant}`)).size).toBe(all.length);
  });

  it('keeps the cache keys the pipelines had: name + word format (+subgroups)', () => {
    expect(kernelSource('flashPrefill', { word: 'f16packed' }).variant).toBe('f16packed');
    expect(kernelSource('mlaDecode', { word: 'f32', subgroups: true }).variant).toBe('f32+subgroups');
    expect(kernelSource('rmsNorm').variant).toBe('plain');
    // matmul: matvec now also takes a lane snippet (subgroupAdd or the plain tree).
    expect(kernelSource('matmul', { word: 'f32' }).parts.map((p) => p.file)).toEqual([
      'shaders/common/word4F32.wgsl',
      'shaders/model/matmul.wgsl',
    ]);
  });

  it('refuses a word format a kernel does not take', () => {
    expect(() => kernelSource('matmul', { word: 'f16' })).toThrow(/matmul: needs a word format of f32 \/ f16packed/);
    expect(() => kernelSource('flashPrefill')).toThrow(/flashPrefill/);
    expect(() => kernelSource('rope', { word: 'f32' })).toThrow(/reads no Word4/);
  });

  it('names the part and the symbol when a requirement is not provided', () => {
    const parts = kernelSource('splitKvDecode', { word: 'f32' }).parts.filter((p) => !p.file.includes('workItem'));
    expect(() => checkKernelParts('splitKvDecode', parts)).toThrow(
      /splitKvDecode: shaders\/attention\/splitKvDecode.wgsl requires 'WorkItem', which no other part provides/,
    );
  });

  it('catches a snippet header that claims a symbol it does not declare', () => {
    const lying = {
      file: 'shaders/test/lying.wgsl',
      code: '// requires: (nothing)\n// provides: Word4, packWord4\nalias Word4 = u32;\n',
    };
    const kernel = {
      file: 'shaders/test/k.wgsl',
      code: '// requires: Word4\n@compute @workgroup_size(1) fn main() {}\n',
    };
    expect(() => checkKernelParts('test', [lying, kernel])).toThrow(/lying.wgsl says it provides 'packWord4'/);
    const noHeader = { file: 'shaders/test/bare.wgsl', code: 'alias Word4 = u32;\n' };
    expect(() => checkKernelParts('test', [noHeader, kernel])).toThrow(/bare.wgsl has no '\/\/ provides:' header/);
  });
});

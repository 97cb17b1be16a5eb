/**
 * WGSL sources, imported as strings (`?raw`) so Vite, vitest and the Node CLI share them, and the
 * composition of kernels from snippets: KV storage snippet (f32 / packed f16 / native f16) +
 * pagedKv helpers + the attention tile + the kernel's own file.
 */
import type { KernelSource, ShaderPart } from '../gpu/pipelineCache';
import type { GpuContext } from '../gpu/context';
import storageF32 from '../../shaders/kv/storageF32.wgsl?raw';
import storageF16Packed from '../../shaders/kv/storageF16Packed.wgsl?raw';
import storageF16 from '../../shaders/kv/storageF16.wgsl?raw';
import kvAppend from '../../shaders/kv/kvAppend.wgsl?raw';
import pagedKv from '../../shaders/attention/pagedKv.wgsl?raw';
import onlineSoftmax from '../../shaders/attention/onlineSoftmax.wgsl?raw';
import attentionTile from '../../shaders/attention/attentionTile.wgsl?raw';
import flashPrefill from '../../shaders/attention/flashPrefill.wgsl?raw';
import splitKvDecode from '../../shaders/attention/splitKvDecode.wgsl?raw';
import mlaDecode from '../../shaders/attention/mlaDecode.wgsl?raw';
import mlaDecodeSubgroups from '../../shaders/attention/mlaDecodeSubgroups.wgsl?raw';
import mlaDecodeLanes from '../../shaders/attention/mlaDecodeLanes.wgsl?raw';
import mergePartials from '../../shaders/attention/mergePartials.wgsl?raw';
import naive from '../../shaders/attention/naive.wgsl?raw';
import naiveScores from '../../shaders/attention/naiveScores.wgsl?raw';
import naiveSoftmax from '../../shaders/attention/naiveSoftmax.wgsl?raw';
import naiveOutput from '../../shaders/attention/naiveOutput.wgsl?raw';
import copy from '../../shaders/util/copy.wgsl?raw';
import copyPages from '../../shaders/kv/copyPages.wgsl?raw';

export type KvDtype = 'f32' | 'f16';

const part = (file: string, code: string): ShaderPart => ({ file: `shaders/${file}`, code });

const P = {
  storageF32: part('kv/storageF32.wgsl', storageF32),
  storageF16Packed: part('kv/storageF16Packed.wgsl', storageF16Packed),
  storageF16: part('kv/storageF16.wgsl', storageF16),
  kvAppend: part('kv/kvAppend.wgsl', kvAppend),
  pagedKv: part('attention/pagedKv.wgsl', pagedKv),
  onlineSoftmax: part('attention/onlineSoftmax.wgsl', onlineSoftmax),
  attentionTile: part('attention/attentionTile.wgsl', attentionTile),
  flashPrefill: part('attention/flashPrefill.wgsl', flashPrefill),
  splitKvDecode: part('attention/splitKvDecode.wgsl', splitKvDecode),
  mlaDecode: part('attention/mlaDecode.wgsl', mlaDecode),
  mlaDecodeSubgroups: part('attention/mlaDecodeSubgroups.wgsl', mlaDecodeSubgroups),
  mlaDecodeLanes: part('attention/mlaDecodeLanes.wgsl', mlaDecodeLanes),
  mergePartials: part('attention/mergePartials.wgsl', mergePartials),
  naive: part('attention/naive.wgsl', naive),
  naiveScores: part('attention/naiveScores.wgsl', naiveScores),
  naiveSoftmax: part('attention/naiveSoftmax.wgsl', naiveSoftmax),
  naiveOutput: part('attention/naiveOutput.wgsl', naiveOutput),
  copy: part('util/copy.wgsl', copy),
  copyPages: part('kv/copyPages.wgsl', copyPages),
};

/** How KV pages are stored in this context: f32, f16 through `shader-f16`, or f16 packed in u32. */
export type KvStorage = 'f32' | 'f16' | 'f16packed';

export function kvStorage(ctx: GpuContext, dtype: KvDtype): KvStorage {
  return dtype === 'f32' ? 'f32' : ctx.features.shaderF16 ? 'f16' : 'f16packed';
}

function storagePart(s: KvStorage): ShaderPart {
  return s === 'f32' ? P.storageF32 : s === 'f16' ? P.storageF16 : P.storageF16Packed;
}

export type PagedKernel = 'kvAppend' | 'flashPrefill' | 'splitKvDecode' | 'naiveScores' | 'naiveOutput';

/** A kernel that reads or writes KV pages, composed for one storage type. */
export function pagedKernelSource(name: PagedKernel, storage: KvStorage): KernelSource {
  const parts: Record<PagedKernel, ShaderPart[]> = {
    kvAppend: [P.kvAppend],
    flashPrefill: [P.pagedKv, P.onlineSoftmax, P.attentionTile, P.flashPrefill],
    splitKvDecode: [P.pagedKv, P.onlineSoftmax, P.splitKvDecode],
    naiveScores: [P.pagedKv, P.naive, P.naiveScores],
    naiveOutput: [P.pagedKv, P.naive, P.naiveOutput],
  };
  return { name, variant: storage, parts: [storagePart(storage), ...parts[name]] };
}

/** A directive on its own, placed before every part (directives precede all declarations). */
const ENABLE_SUBGROUPS: ShaderPart = { file: '(enable subgroups)', code: 'enable subgroups;\n' };

/**
 * mlaDecode: storage snippet, the lane snippet (subgroup shuffles, or plain loads), pagedKv,
 * onlineSoftmax and the kernel; with subgroups, `enable subgroups;` goes first.
 */
export function mlaDecodeSource(storage: KvStorage, subgroups: boolean): KernelSource {
  const lanes = subgroups ? [ENABLE_SUBGROUPS, storagePart(storage), P.mlaDecodeSubgroups] : [storagePart(storage), P.mlaDecodeLanes];
  return {
    name: 'mlaDecode',
    variant: `${storage}${subgroups ? '+subgroups' : ''}`,
    parts: [...lanes, P.pagedKv, P.onlineSoftmax, P.mlaDecode],
  };
}

/** A kernel with no KV storage dependence. */
export function plainKernelSource(name: 'mergePartials' | 'naiveSoftmax' | 'copy' | 'copyPages'): KernelSource {
  return { name, variant: 'plain', parts: name === 'naiveSoftmax' ? [P.naive, P.naiveSoftmax] : [P[name]] };
}

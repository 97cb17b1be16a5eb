/**
 * Every WGSL source, imported as a string (`?raw`) so Vite, vitest and the Node CLI share them, and
 * the one way a kernel's source is declared: a row of KERNELS (its file and the snippets composed
 * before it), assembled by kernelSource(name, variant). `npm run shaders:dump` writes every
 * assembled kernel (allKernelSources) to a folder.
 *
 * A kernel is: [`enable subgroups;`] + [a word4 snippet: how 4 stored values are one Word4] +
 * shared snippets + the kernel's own file. Each snippet's header says what it needs and gives:
 *   // requires: Word4, unpackWord4        (symbols some other part must declare)
 *   // provides: seqView, kvRowBase        (symbols this part declares)
 * and assembly checks both: a provided symbol must be declared at module scope of its part, a
 * required one by another part of the kernel. A kernel file only says what it requires.
 */
import type { KernelSource, ShaderPart } from '../gpu/pipelineCache';
import type { GpuContext } from '../gpu/context';
import type { KvDtype, WeightDtype } from '../gpu/dtype';
import word4F32 from '../../shaders/common/word4F32.wgsl?raw';
import word4F16Packed from '../../shaders/common/word4F16Packed.wgsl?raw';
import word4F16 from '../../shaders/common/word4F16.wgsl?raw';
import workItem from '../../shaders/common/workItem.wgsl?raw';
import kvAppend from '../../shaders/kv/kvAppend.wgsl?raw';
import kvAppendQuant from '../../shaders/kv/kvAppendQuant.wgsl?raw';
import kvPagesFloat from '../../shaders/attention/kvPagesFloat.wgsl?raw';
import kvPagesQ8 from '../../shaders/attention/kvPagesQ8.wgsl?raw';
import kvPagesQ4 from '../../shaders/attention/kvPagesQ4.wgsl?raw';
import kvPagesOneBuffer from '../../shaders/attention/kvPagesOneBuffer.wgsl?raw';
import kvPagesSplit from '../../shaders/attention/kvPagesSplit.wgsl?raw';
import kvPagesWrite from '../../shaders/kv/kvPagesWrite.wgsl?raw';
import kvPagesWriteQuant from '../../shaders/kv/kvPagesWriteQuant.wgsl?raw';
import kvPagesWriteRange from '../../shaders/kv/kvPagesWriteRange.wgsl?raw';
import copyPages from '../../shaders/kv/copyPages.wgsl?raw';
import pagedKv from '../../shaders/attention/pagedKv.wgsl?raw';
import onlineSoftmax from '../../shaders/attention/onlineSoftmax.wgsl?raw';
import attentionTile from '../../shaders/attention/attentionTile.wgsl?raw';
import attentionTileV1 from '../../shaders/attention/attentionTileV1.wgsl?raw';
import attentionTileV2 from '../../shaders/attention/attentionTileV2.wgsl?raw';
import flashPrefill from '../../shaders/attention/flashPrefill.wgsl?raw';
import flashPrefillV2 from '../../shaders/attention/flashPrefillV2.wgsl?raw';
import splitKvDecode from '../../shaders/attention/splitKvDecode.wgsl?raw';
import splitKvDecodeV1 from '../../shaders/attention/splitKvDecodeV1.wgsl?raw';
import splitKvDecodeV2 from '../../shaders/attention/splitKvDecodeV2.wgsl?raw';
import mlaDecode from '../../shaders/attention/mlaDecode.wgsl?raw';
import mlaDecodeV1 from '../../shaders/attention/mlaDecodeV1.wgsl?raw';
import mlaDecodeSubgroups from '../../shaders/attention/mlaDecodeSubgroups.wgsl?raw';
import mlaDecodeLanes from '../../shaders/attention/mlaDecodeLanes.wgsl?raw';
import mergePartials from '../../shaders/attention/mergePartials.wgsl?raw';
import naive from '../../shaders/attention/naive.wgsl?raw';
import naiveScores from '../../shaders/attention/naiveScores.wgsl?raw';
import naiveSoftmax from '../../shaders/attention/naiveSoftmax.wgsl?raw';
import naiveOutput from '../../shaders/attention/naiveOutput.wgsl?raw';
import copy from '../../shaders/util/copy.wgsl?raw';
import matmul from '../../shaders/model/matmul.wgsl?raw';
import matvec from '../../shaders/model/matvec.wgsl?raw';
import headMatmul from '../../shaders/model/headMatmul.wgsl?raw';
import rmsNorm from '../../shaders/model/rmsNorm.wgsl?raw';
import embedding from '../../shaders/model/embedding.wgsl?raw';
import gatedActivation from '../../shaders/model/gatedActivation.wgsl?raw';
import rope from '../../shaders/model/rope.wgsl?raw';

const part = (file: string, code: string): ShaderPart => ({ file: `shaders/${file}`, code });

/** How a kernel's Word4 is stored: f32, f16 through `shader-f16`, or f16 packed in u32 pairs. */
export type Word4Format = 'f32' | 'f16' | 'f16packed';

const WORD4: Record<Word4Format, ShaderPart> = {
  f32: part('common/word4F32.wgsl', word4F32),
  f16: part('common/word4F16.wgsl', word4F16),
  f16packed: part('common/word4F16Packed.wgsl', word4F16Packed),
};

/**
 * KV pages in this context: f16 through `shader-f16` where the adapter has it, else packed. Quantised
 * pages (q8 / q4) are dequantised to f32 where they are read (kvPagesQ8 / kvPagesQ4.wgsl), so their
 * kernels take the f32 snippet: exact dequantised values in tiles and registers, and the same shader
 * on every adapter (the f16 scales are read with unpack2x16float, which needs no `shader-f16`).
 */
export function kvWord4Format(ctx: GpuContext, dtype: KvDtype): Word4Format {
  return dtype === 'f16' ? (ctx.features.shaderF16 ? 'f16' : 'f16packed') : 'f32';
}

/** How a kernel's KV pages are stored: Word4 values (f32 / f16), or int8 / int4 codes with f16 scales. */
export type KvPagesFormat = 'float' | 'q8' | 'q4';

/**
 * A kernel that reads KV pages takes two snippets: the row reader of its page format (how a row is
 * decoded: kRow, kVec, ...), then the layout of its pool (which buffer holds page p: the bindings,
 * kvPageAt, kLoad / vLoad). Every format reads through every layout.
 */
const KV_ROW_READERS: Record<KvPagesFormat, ShaderPart> = {
  float: part('attention/kvPagesFloat.wgsl', kvPagesFloat),
  q8: part('attention/kvPagesQ8.wgsl', kvPagesQ8),
  q4: part('attention/kvPagesQ4.wgsl', kvPagesQ4),
};

/**
 * The page layouts: one buffer per K and V, or a pool split across up to 4 buffers each
 * (KvPool.create, when one layer's pool passes one binding), picking the buffer by page index. Only
 * a split pool's kernels take the split layout, so a pool of one buffer keeps its pipelines.
 */
const KV_LAYOUTS = {
  one: part('attention/kvPagesOneBuffer.wgsl', kvPagesOneBuffer),
  split: part('attention/kvPagesSplit.wgsl', kvPagesSplit),
};

/**
 * A KV-writing kernel (kvAppend) takes the store snippet of its page format (how a word is stored:
 * plainly, or atomically for the q8 / q4 scale halves), then the write layout: which pages the bound
 * buffers hold. A split pool is written one buffer per dispatch (KvAppend.encode), so one kernel
 * serves a pool of one buffer and a split one.
 */
const KV_STORES = {
  float: part('kv/kvPagesWrite.wgsl', kvPagesWrite),
  quant: part('kv/kvPagesWriteQuant.wgsl', kvPagesWriteQuant),
} as const;
const KV_WRITE_RANGE = part('kv/kvPagesWriteRange.wgsl', kvPagesWriteRange);

/** The KV page snippet of a KV dtype (f32 and f16 are both Word4 pages). */
export function kvPagesFormat(dtype: KvDtype): KvPagesFormat {
  return dtype === 'q8' || dtype === 'q4' ? dtype : 'float';
}

/**
 * Weights: f16 always takes the packed snippet. unpack2x16float is as fast here, and lavapipe
 * compiled the native `vec4<f16>` variant 5-10x slower (matvec ~20 s per pipeline). The bytes are
 * the same either way (uploadWeights writes f16 pairs, low half first).
 */
export function weightWord4Format(dtype: WeightDtype): Word4Format {
  return dtype === 'f32' ? 'f32' : 'f16packed';
}

const SNIPPETS = {
  workItem: part('common/workItem.wgsl', workItem),
  pagedKv: part('attention/pagedKv.wgsl', pagedKv),
  onlineSoftmax: part('attention/onlineSoftmax.wgsl', onlineSoftmax),
  attentionTile: part('attention/attentionTile.wgsl', attentionTile),
  attentionTileV1: part('attention/attentionTileV1.wgsl', attentionTileV1),
  attentionTileV2: part('attention/attentionTileV2.wgsl', attentionTileV2),
  naive: part('attention/naive.wgsl', naive),
};
type SnippetName = keyof typeof SNIPPETS;

/** A directive on its own, placed before every part (directives precede all declarations). */
const ENABLE_SUBGROUPS: ShaderPart = {
  file: '(enable subgroups)',
  code: '// requires: (nothing)\n// provides: (nothing)\nenable subgroups;\n',
};
const LANES = {
  plain: part('attention/mlaDecodeLanes.wgsl', mlaDecodeLanes),
  subgroups: part('attention/mlaDecodeSubgroups.wgsl', mlaDecodeSubgroups),
};

/**
 * The lane snippet of a kernel composed outside KERNELS (matvecQuant): `enable subgroups;` and the
 * subgroup lane snippet, or the plain one. Goes before every other part.
 */
export function laneParts(subgroups: boolean): ShaderPart[] {
  return subgroups ? [ENABLE_SUBGROUPS, LANES.subgroups] : [LANES.plain];
}

interface KernelDecl {
  file: ShaderPart;
  /** Snippets composed before the file, in order (after the word4 snippet). */
  snippets: SnippetName[];
  /** The Word4 formats the kernel is composed for; none: the kernel reads no Word4. */
  words?: readonly Word4Format[];
  /** Has a subgroup variant (mlaDecode's lane snippets). */
  subgroups?: boolean;
  /** Reads KV pages: composed with a KV page snippet (KernelVariant.kv) after the word4 / lane snippets. */
  pages?: boolean;
  /** Writes KV pages: composed with the store snippet of its page kind and the write range before `snippets`. */
  writes?: keyof typeof KV_STORES;
  /**
   * Per-format snippets (e.g. a quantised weight format's dequantiser), composed after the word4 /
   * lane snippets and before `snippets`; the variant then names the format: kernelSource(name, { format }).
   */
  formats?: Readonly<Record<string, readonly ShaderPart[]>>;
}

const ALL_WORDS = ['f32', 'f16', 'f16packed'] as const;
/** Kernels that read f16 as packed pairs only (weights; mlaDecode, see mlaDecode.ts). */
const PACKED_WORDS = ['f32', 'f16packed'] as const;

const KERNELS = {
  kvAppend: { file: part('kv/kvAppend.wgsl', kvAppend), snippets: [], words: ALL_WORDS, writes: 'float' },
  /** kvAppend for q8 / q4 pages: quantises on write (writes u32 codes and scales, no Word4). */
  kvAppendQuant: { file: part('kv/kvAppendQuant.wgsl', kvAppendQuant), snippets: [], writes: 'quant' },
  copyPages: { file: part('kv/copyPages.wgsl', copyPages), snippets: [] },
  /** v3: S and P in registers; the lane snippet's shuffles add a row's partial scores (LANES_PER_ROW > 1). */
  flashPrefill: {
    file: part('attention/flashPrefill.wgsl', flashPrefill),
    snippets: ['pagedKv', 'workItem', 'attentionTile'],
    pages: true,
    words: ALL_WORDS,
    subgroups: true,
  },
  /** The previous flashPrefill versions, kept as the bench's baselines (the ladder): v2, tile as stored. */
  flashPrefillV2: {
    file: part('attention/flashPrefillV2.wgsl', flashPrefillV2),
    snippets: ['pagedKv', 'workItem', 'onlineSoftmax', 'attentionTileV2'],
    pages: true,
    words: ALL_WORDS,
  },
  /** v1: the K / V tile unpacked to f32. */
  flashPrefillV1: {
    file: part('attention/flashPrefillV2.wgsl', flashPrefillV2),
    snippets: ['pagedKv', 'workItem', 'onlineSoftmax', 'attentionTileV1'],
    pages: true,
    words: ALL_WORDS,
  },
  /** v3: needs one fixed subgroup size (q and p through shuffles); no workgroup barrier in the key loop. */
  splitKvDecode: {
    file: part('attention/splitKvDecode.wgsl', splitKvDecode),
    snippets: ['pagedKv', 'workItem'],
    pages: true,
    words: ALL_WORDS,
    subgroups: true,
  },
  /** v2, kept as the bench's baseline and for adapters without one fixed subgroup size. */
  splitKvDecodeV2: {
    file: part('attention/splitKvDecodeV2.wgsl', splitKvDecodeV2),
    snippets: ['pagedKv', 'workItem', 'onlineSoftmax'],
    pages: true,
    words: ALL_WORDS,
    subgroups: true,
  },
  /** The previous decode kernel, kept as the bench's baseline (the ladder in its header). */
  splitKvDecodeV1: {
    file: part('attention/splitKvDecodeV1.wgsl', splitKvDecodeV1),
    snippets: ['pagedKv', 'workItem', 'onlineSoftmax'],
    pages: true,
    words: ALL_WORDS,
  },
  mlaDecode: {
    file: part('attention/mlaDecode.wgsl', mlaDecode),
    snippets: ['pagedKv', 'workItem', 'onlineSoftmax'],
    pages: true,
    words: PACKED_WORDS,
    subgroups: true,
  },
  /** The previous mlaDecode, kept as the bench's baseline (the ladder in mlaDecode.wgsl's header). */
  mlaDecodeV1: {
    file: part('attention/mlaDecodeV1.wgsl', mlaDecodeV1),
    snippets: ['pagedKv', 'workItem', 'onlineSoftmax'],
    pages: true,
    words: PACKED_WORDS,
    subgroups: true,
  },
  mergePartials: { file: part('attention/mergePartials.wgsl', mergePartials), snippets: [] },
  naiveScores: {
    file: part('attention/naiveScores.wgsl', naiveScores),
    snippets: ['pagedKv', 'naive'],
    pages: true,
    words: ALL_WORDS,
  },
  naiveSoftmax: { file: part('attention/naiveSoftmax.wgsl', naiveSoftmax), snippets: ['naive'] },
  naiveOutput: {
    file: part('attention/naiveOutput.wgsl', naiveOutput),
    snippets: ['pagedKv', 'naive'],
    pages: true,
    words: ALL_WORDS,
  },
  copy: { file: part('util/copy.wgsl', copy), snippets: [] },
  matmul: { file: part('model/matmul.wgsl', matmul), snippets: [], words: PACKED_WORDS },
  matvec: { file: part('model/matvec.wgsl', matvec), snippets: [], words: PACKED_WORDS, subgroups: true },
  headMatmul: { file: part('model/headMatmul.wgsl', headMatmul), snippets: [], words: PACKED_WORDS },
  rmsNorm: { file: part('model/rmsNorm.wgsl', rmsNorm), snippets: [] },
  embedding: { file: part('model/embedding.wgsl', embedding), snippets: [] },
  gatedActivation: { file: part('model/gatedActivation.wgsl', gatedActivation), snippets: [] },
  rope: { file: part('model/rope.wgsl', rope), snippets: [] },
} satisfies Record<string, KernelDecl>;

export type KernelName = keyof typeof KERNELS;

export interface KernelVariant {
  /** The Word4 snippet, for a kernel that reads Word4 (KV pages, weights). */
  word?: Word4Format;
  /** mlaDecode: the subgroup lane snippet (and `enable subgroups;`) instead of the plain one. */
  subgroups?: boolean;
  /** A key of the kernel's `formats` (a weight format such as 'q8'), for a kernel declared with them. */
  format?: string;
  /** A kernel that reads KV pages: how they are stored (default float; q8 / q4 need the f32 word). */
  kv?: KvPagesFormat;
  /**
   * A kernel that reads KV pages, for a pool split across up to 4 buffers per K and V
   * (AttentionSpec.pagesPerBuffer): the split page layout, with 6 more bindings.
   */
  split?: boolean;
}

/** The source of kernel `name` composed for `variant`, checked (requires / provides). */
export function kernelSource(name: KernelName, variant: KernelVariant = {}): KernelSource {
  const decl: KernelDecl = KERNELS[name];
  const { word, subgroups = false, format, split = false } = variant;
  if (split && !decl.pages) {
    const why = decl.writes ? 'writes a split pool one buffer per dispatch' : 'touches no KV pages';
    throw new Error(`kernel ${name}: ${why}, so has no split variant`);
  }
  const kv = variant.kv ?? (decl.pages ? 'float' : undefined);
  if (kv && !decl.pages) throw new Error(`kernel ${name}: reads no KV pages, so takes no kv format (got ${kv})`);
  if (kv && kv !== 'float' && word !== 'f32') {
    throw new Error(`kernel ${name}: ${kv} KV pages are dequantised to f32, so need the f32 word (got ${word})`);
  }
  if (decl.words && (!word || !decl.words.includes(word))) {
    throw new Error(`kernel ${name}: needs a word format of ${decl.words.join(' / ')}, got ${String(word)}`);
  }
  if (!decl.words && word) throw new Error(`kernel ${name}: reads no Word4, so takes no word format (got ${word})`);
  if (subgroups && !decl.subgroups) throw new Error(`kernel ${name}: has no subgroup variant`);
  if (decl.formats && (!format || !decl.formats[format])) {
    throw new Error(
      `kernel ${name}: needs a format of ${Object.keys(decl.formats).join(' / ')}, got ${String(format)}`,
    );
  }
  if (!decl.formats && format) throw new Error(`kernel ${name}: takes no format (got ${format})`);
  // `enable subgroups;` first (directives precede every declaration), then the word4 snippet, the
  // lane snippet, the shared snippets and the kernel file.
  const parts: ShaderPart[] = [
    ...(subgroups ? [ENABLE_SUBGROUPS] : []),
    ...(word ? [WORD4[word]] : []),
    ...(decl.subgroups ? [subgroups ? LANES.subgroups : LANES.plain] : []),
    ...(kv ? [KV_ROW_READERS[kv], KV_LAYOUTS[split ? 'split' : 'one']] : []),
    ...(decl.writes ? [KV_STORES[decl.writes], KV_WRITE_RANGE] : []),
    ...(format ? decl.formats![format] : []),
    ...decl.snippets.map((s) => SNIPPETS[s]),
    decl.file,
  ];
  checkKernelParts(name, parts);
  const tag =
    [word, kv && kv !== 'float' ? `kv${kv}` : undefined, format, split ? 'split' : undefined]
      .filter((t) => t)
      .join('+') || 'plain';
  return { name, variant: decl.subgroups && subgroups ? `${tag}+subgroups` : tag, parts };
}

/** Every kernel in every variant it is composed for: what `npm run shaders:dump` writes. */
export function allKernelSources(): KernelSource[] {
  const out: KernelSource[] = [];
  for (const name of Object.keys(KERNELS) as KernelName[]) {
    const decl: KernelDecl = KERNELS[name];
    for (const word of decl.words ?? [undefined]) {
      for (const format of decl.formats ? Object.keys(decl.formats) : [undefined]) {
        for (const subgroups of decl.subgroups ? [false, true] : [false]) {
          const kvs: (KvPagesFormat | undefined)[] = !decl.pages
            ? [undefined]
            : word === 'f32'
              ? ['float', 'q8', 'q4']
              : ['float'];
          for (const kv of kvs) {
            for (const split of decl.pages ? [false, true] : [false]) {
              out.push(kernelSource(name, { word, subgroups, format, kv, split }));
            }
          }
        }
      }
    }
  }
  return out;
}

/** The header lists of one part: `// requires: a, b,` continued on following `//` lines after a comma. */
function headerList(code: string, key: 'requires' | 'provides'): string[] | undefined {
  const lines = code.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`// ${key}:`));
  if (i < 0) return undefined;
  let text = lines[i].slice(`// ${key}:`.length);
  for (let j = i + 1; text.trimEnd().endsWith(',') && j < lines.length && lines[j].startsWith('//'); j++) {
    text += lines[j].slice(2);
  }
  text = text.replace(/\(.*?\)/g, ''); // "(nothing)", "(shaders/common/word4*.wgsl)"
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s);
}

/** Names declared at module scope (column 0): alias, struct, fn, override, const, var. */
function declarations(code: string): Set<string> {
  const names = new Set<string>();
  const re = /^(?:@group\(\d+\)\s*@binding\(\d+\)\s*)?(?:alias|struct|fn|override|const|var(?:<[^>]*>)?)\s+(\w+)/gm;
  for (const m of code.matchAll(re)) names.add(m[1]);
  return names;
}

const checked = new Set<string>();

/** Throws naming the part and the symbol when a snippet's header does not hold in this kernel. */
export function checkKernelParts(kernel: string, parts: readonly ShaderPart[]): void {
  const key = `${kernel}:${parts.map((p) => p.file).join('+')}`;
  if (checked.has(key)) return;
  const declared = parts.map((p) => declarations(p.code));
  parts.forEach((p, i) => {
    const isKernelFile = i === parts.length - 1;
    const provides = headerList(p.code, 'provides');
    if (!isKernelFile && provides === undefined) {
      throw new Error(`kernel ${kernel}: snippet ${p.file} has no '// provides:' header line`);
    }
    for (const sym of provides ?? []) {
      if (!declared[i].has(sym)) {
        throw new Error(`kernel ${kernel}: ${p.file} says it provides '${sym}' but declares no such symbol`);
      }
    }
    for (const sym of headerList(p.code, 'requires') ?? []) {
      if (!declared.some((d, j) => j !== i && d.has(sym))) {
        throw new Error(
          `kernel ${kernel}: ${p.file} requires '${sym}', which no other part provides ` +
            `(parts: ${parts.map((q) => q.file).join(', ')})`,
        );
      }
    }
  });
  checked.add(key);
}

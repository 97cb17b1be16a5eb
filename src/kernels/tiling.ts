/**
 * Tile sizes for the flash kernels, chosen from the head dims and the adapter's workgroup storage
 * (16 KiB on some devices, 32 KiB on most).
 *
 * Workgroup memory (bytes) = 16 * BLOCK_M * D4 + W * BLOCK_N * max(D4, DV4) + 4 * (BLOCK_M * BLOCK_N + 3 * BLOCK_M),
 * W = bytes of one stored Word4 in the K / V tile: 16 for f32 KV, 8 for f16 KV (flashPrefill v2 keeps
 * the tile as stored; v1 unpacked it to f32, W = 16 always).
 * Worked example, D = Dv = 128 (D4 = 32), BLOCK_M 16, BLOCK_N 32, f32:
 *   16 * 512 + 16 * 1024 + 4 * (512 + 48) = 24576 + 2240 = 26816 bytes: fits 32 KiB, not 16 KiB.
 * With f16 KV at BLOCK_M 32: 16 * 1024 + 8 * 32 * 32 + 4 * (1024 + 96) = 29056 bytes: 32 keys per
 * tile in 32 KiB, where f32 words allow 16.
 * Per-thread accumulator: ceil(BLOCK_M * DV4 / WORKGROUP_SIZE) vec4s <= ACC_MAX (8, in attentionTile.wgsl).
 */
import { ShapeError } from '../gpu/errors';

export const ACC_MAX = 8;

export interface TileConfig {
  blockM: number;
  blockN: number;
  workgroupSize: number;
  accPerThread: number;
  workgroupBytes: number;
}

export function workgroupBytes(blockM: number, blockN: number, d4: number, dv4: number, kvWordBytes = 16): number {
  return 16 * blockM * d4 + kvWordBytes * blockN * Math.max(d4, dv4) + 4 * (blockM * blockN + 3 * blockM);
}

/**
 * Largest tiles that fit: BLOCK_M from maxRows down (rows = query tokens x heads per KV head),
 * then BLOCK_N from 64 down. `maxRows` lets decode use BLOCK_M = group size instead of wasting rows.
 * `kvWordBytes`: bytes of one Word4 in the K / V tile (16 f32, 8 f16).
 */
export function chooseTiles(
  headDimQK: number,
  headDimV: number,
  maxWorkgroupBytes: number,
  maxInvocations: number,
  maxRows = 32,
  kvWordBytes = 16,
): TileConfig {
  const d4 = headDimQK / 4;
  const dv4 = headDimV / 4;
  const workgroupSize = Math.min(128, maxInvocations);
  for (let blockM = pow2Floor(Math.min(32, Math.max(1, maxRows))); blockM >= 1; blockM /= 2) {
    const accPerThread = Math.ceil((blockM * dv4) / workgroupSize);
    if (accPerThread > ACC_MAX) continue;
    for (let blockN = 64; blockN >= 4; blockN /= 2) {
      const bytes = workgroupBytes(blockM, blockN, d4, dv4, kvWordBytes);
      if (bytes <= maxWorkgroupBytes) return { blockM, blockN, workgroupSize, accPerThread, workgroupBytes: bytes };
    }
  }
  throw new ShapeError(
    `head dims ${headDimQK}/${headDimV} do not fit this adapter's ${maxWorkgroupBytes}-byte workgroup storage`,
  );
}

/** flashPrefill v3's register budgets per lane (attentionTile.wgsl Q_MAX, A_MAX, S_MAX): q / output words, keys. */
export const PREFILL_Q_MAX = 144;
export const PREFILL_A_MAX = 128;
export const PREFILL_S_MAX = 64;

/** flashPrefill v3 tiles (attentionTile.wgsl). */
export interface PrefillTileConfig {
  /** Rows (query token x head in group) per workgroup. */
  blockM: number;
  /** Keys per K / V tile. */
  blockN: number;
  /** Lanes that share one row (LANES_PER_ROW): 1 without subgroups. */
  lanesPerRow: number;
  /** K / V tile buffers: 2 double-buffered (one barrier per tile), 1 (two). */
  kvBuffers: 1 | 2;
  /** blockM * lanesPerRow. */
  workgroupSize: number;
  workgroupBytes: number;
  /** K / V read straight from the pages, no tiles (KV_DIRECT). */
  kvDirect: boolean;
}

/**
 * Workgroup bytes of flashPrefill v3: the K and V tiles only (Q, S, P and the statistics live in
 * registers), buffers * BLOCK_N * (D4 + V_TILE4) stored Word4s of `kvWordBytes` (16 f32, 8 f16);
 * V_TILE4 = DV4, or 1 where V is read from the K tile (MLA, V aliasing K).
 * e.g. d 128 f16, 32 keys, double-buffered: 2 * 32 * 64 * 8 = 32768.
 */
export function prefillWorkgroupBytes(
  blockN: number,
  d4: number,
  dv4: number,
  kvWordBytes: number,
  buffers: number,
  vInK = false,
): number {
  return buffers * blockN * (d4 + (vInK ? 1 : dv4)) * kvWordBytes;
}

export interface PrefillTileOptions {
  /** The adapter's fixed subgroup size, 0 where it has none (or no fixed size): one lane per row. */
  subgroupSize?: number;
  /** A CPU driver (isSoftwareAdapter): one lane per row, the largest key tiles. */
  software?: boolean;
  /** V is the first DV4 words of the K row (MLA): no V tile. */
  vInK?: boolean;
  /** K / V read straight from the pages (KV_DIRECT): no tiles, no barriers. */
  kvDirect?: boolean;
  /** Overrides, for tests and tuning. */
  lanesPerRow?: number;
  blockM?: number;
  maxBlockN?: number;
  kvBuffers?: 1 | 2;
}

/**
 * flashPrefill v3 tiles from the head dims, the adapter's workgroup storage and invocations, and
 * its subgroups.
 * - Lanes per row L: on a GPU with a fixed subgroup size, the smallest power of two that brings
 *   this lane's q and output words to 16 vec4s or fewer ((D4 + DV4) / L <= 16: d 64 -> 2, d 128 -> 4,
 *   d 256 -> 8; at most 16 and the subgroup size, dividing D4 and DV4), so the registers stay
 *   within a GPU thread's budget at every head dim. Without subgroups, and on CPU drivers (gated on
 *   the adapter: there a lane is one SIMD lane, a whole row costs it no registers and the butterfly
 *   would be pure overhead), L = 1.
 * - Rows per workgroup BLOCK_M = min(64, maxInvocations / L) (d 128, L 4: 64 rows, 256 lanes).
 * - Keys per tile BLOCK_N: the largest power of two from 64 (CPU drivers) or 32 (GPUs: the
 *   scores are BLOCK_N registers) down to 16 whose double-buffered K / V tiles fit the storage;
 *   else the largest single-buffered one down to 8; where not even that fits (MLA's 576-wide rows in
 *   f32), K / V are read straight from the pages (kvDirect), as on CPU drivers.
 * Worked example, d 128 f16 KV on lavapipe (32 KiB): L 1, BLOCK_M 64, BLOCK_N 32 double-buffered
 * (32768 bytes); f32 KV: BLOCK_N 16 double-buffered.
 */
export function choosePrefillTiles(
  headDimQK: number,
  headDimV: number,
  maxWorkgroupBytes: number,
  maxInvocations: number,
  kvWordBytes: number,
  opts: PrefillTileOptions = {},
): PrefillTileConfig {
  const d4 = headDimQK / 4;
  const dv4 = headDimV / 4;
  const sg = opts.subgroupSize ?? 0;
  let lanes = opts.lanesPerRow ?? 1;
  if (opts.lanesPerRow === undefined && sg > 1 && !opts.software) {
    while (lanes < Math.min(16, sg) && (d4 + dv4) / lanes > 16) lanes *= 2;
    while (lanes > 1 && (d4 % lanes !== 0 || dv4 % lanes !== 0)) lanes /= 2;
  }
  if (lanes > 1 && (sg % lanes !== 0 || d4 % lanes !== 0 || dv4 % lanes !== 0)) {
    throw new ShapeError(`flashPrefill: ${lanes} lanes per row must divide the subgroup size ${sg}, D4 and DV4`);
  }
  if (d4 / lanes > PREFILL_Q_MAX || dv4 / lanes > PREFILL_A_MAX) {
    throw new ShapeError(
      `flashPrefill: head dims ${headDimQK}/${headDimV} pass the registers of ${lanes} lane(s) per row`,
    );
  }
  const blockM = opts.blockM ?? Math.min(64, pow2Floor(maxInvocations / lanes));
  const maxN = Math.min(PREFILL_S_MAX, opts.maxBlockN ?? (opts.software ? 64 : 32));
  // CPU drivers read K / V straight from the pages: every lane of the workgroup reads the same
  // word, one scalar load for the whole SIMD vector there, with no barrier (the tiles' barriers
  // are coroutine switches). Measured (lavapipe, GQA 32/8 d 128 f16, 256 tokens, same run):
  // 1.13x the double-buffered 16-key tiles. Gated on the adapter: GPUs take the tiles.
  const direct = opts.kvDirect ?? opts.software === true;
  const bytes = (n: number, b: number) =>
    direct ? b * n * 2 * kvWordBytes : prefillWorkgroupBytes(n, d4, dv4, kvWordBytes, b, opts.vInK);
  const pick = (blockN: number, kvBuffers: 1 | 2): PrefillTileConfig => ({
    blockM,
    blockN,
    lanesPerRow: lanes,
    kvBuffers,
    workgroupSize: blockM * lanes,
    workgroupBytes: bytes(blockN, kvBuffers),
    kvDirect: direct,
  });
  if (direct) return pick(pow2Floor(maxN), 1);
  if (opts.kvBuffers !== 1) {
    for (let n = pow2Floor(maxN); n >= (opts.kvBuffers === 2 ? 8 : 16); n /= 2) {
      if (bytes(n, 2) <= maxWorkgroupBytes) return pick(n, 2);
    }
  }
  if (opts.kvBuffers !== 2) {
    for (let n = pow2Floor(maxN); n >= 8; n /= 2) if (bytes(n, 1) <= maxWorkgroupBytes) return pick(n, 1);
  }
  // Not even 8 keys fit (MLA's 576-wide rows in f32 at 16-32 KiB): K / V straight from the pages.
  return { ...pick(pow2Floor(maxN), 1), kvDirect: true, workgroupBytes: 2 * pow2Floor(maxN) * kvWordBytes };
}

function pow2Ceil(x: number): number {
  return 2 ** Math.ceil(Math.log2(x));
}
function pow2Floor(x: number): number {
  return 2 ** Math.floor(Math.log2(x));
}

/**
 * splitKvDecode tiles: one key per lane (BLOCK_N = workgroup size = 64), BLOCK_M = the group size
 * rounded up to a power of two, halved until the accumulator fits ACC_MAX vec4s per lane
 * (BLOCK_M * DV4 <= 64 * ACC_MAX) and the workgroup memory the adapter's limit.
 * Worked example: GQA 32/8 (G = 4), Dv 128: BLOCK_M 4, 4 * 32 / 64 = 2 vec4s per lane.
 * `subgroupSize` > 1 (v2's subgroup path) adds the per-subgroup max and sum arrays, 8 * BLOCK_M * 64 / size bytes.
 */
export function chooseDecodeTiles(
  groupSize: number,
  headDimQK: number,
  headDimV: number,
  maxWorkgroupBytes: number,
  subgroupSize = 0,
): TileConfig {
  const blockN = 64;
  const d4 = headDimQK / 4;
  const dv4 = headDimV / 4;
  for (let blockM = Math.min(32, pow2Ceil(groupSize)); blockM >= 1; blockM /= 2) {
    const accPerThread = Math.ceil((blockM * dv4) / blockN);
    const numSg = subgroupSize > 1 ? blockN / subgroupSize : 1;
    const bytes = 16 * blockM * d4 + 4 * blockM * (blockN + 3) + 8 * blockM * numSg;
    if (accPerThread <= ACC_MAX && bytes <= maxWorkgroupBytes) {
      return { blockM, blockN, workgroupSize: blockN, accPerThread, workgroupBytes: bytes };
    }
  }
  throw new ShapeError(
    `decode: head dims ${headDimQK}/${headDimV} do not fit ${maxWorkgroupBytes} bytes of workgroup storage`,
  );
}

/** splitKvDecode v3's registers per lane (splitKvDecode.wgsl REG_MAX): q words plus output words, vec4s. */
export const SPLIT_KV_REG_MAX = 32;
/** Most rows (query tokens x heads of one KV head) one splitKvDecode v3 workgroup takes (ROWS_MAX). */
export const SPLIT_KV_ROWS_MAX = 32;

/** splitKvDecode v3 tiles: BLOCK_M rows, NUM_SG subgroups of SG_SIZE lanes, q / output words per lane per row. */
export interface SplitKvTileConfig extends TileConfig {
  subgroupSize: number;
  numSubgroups: number;
  /** q words (vec4) a lane holds per row: ceil(D4 / subgroupSize). */
  qWords: number;
  /** Output words (vec4) a lane accumulates per row: ceil(DV4 / subgroupSize). */
  accWords: number;
}

/**
 * splitKvDecode v3 tiles (shaders/attention/splitKvDecode.wgsl) for an adapter whose subgroups all have
 * `subgroupSize` lanes, or undefined where they do not fit (then v2 runs). BLOCK_M = the group size
 * rounded up to a power of two, halved until a lane's q and output words fit its registers,
 * BLOCK_M * (QW + AW) <= 32 vec4s (128 floats: a GPU keeps them in registers); the workgroup is 64
 * lanes (fewer if its memory, 8 * BLOCK_M * NUM_SG + 16 * NUM_SG * DV4 bytes, does not fit).
 * Worked examples at d 128 (D4 = DV4 = 32), G 4: a GPU with 32-lane subgroups: QW = AW = 1,
 * BLOCK_M 4, 2 subgroups, 1 KiB; lavapipe (8 lanes): QW = AW = 4, BLOCK_M 4, 8 subgroups, 4.3 KiB;
 * SwiftShader (4 lanes): QW = AW = 8, BLOCK_M 2 (two row tiles), 16 subgroups, 8.3 KiB.
 * `oneSubgroup` (CPU drivers): 1 subgroup, so no merge of subgroup states at the end of a chunk.
 */
export function chooseSplitKvTiles(
  groupSize: number,
  headDimQK: number,
  headDimV: number,
  maxWorkgroupBytes: number,
  subgroupSize: number,
  /** One subgroup per workgroup (a CPU driver: isSoftwareAdapter; see SplitKvDecode.create). */
  oneSubgroup = false,
): SplitKvTileConfig | undefined {
  if (subgroupSize < 2 || subgroupSize > 64) return undefined;
  const qWords = Math.ceil(headDimQK / 4 / subgroupSize);
  const accWords = Math.ceil(headDimV / 4 / subgroupSize);
  let blockM = Math.min(SPLIT_KV_ROWS_MAX, pow2Ceil(groupSize));
  while (blockM > 1 && blockM * (qWords + accWords) > SPLIT_KV_REG_MAX) blockM /= 2;
  if (blockM * (qWords + accWords) > SPLIT_KV_REG_MAX) return undefined;
  for (let numSubgroups = oneSubgroup ? 1 : 64 / subgroupSize; numSubgroups >= 1; numSubgroups /= 2) {
    const bytes = 8 * blockM * numSubgroups + 16 * numSubgroups * (headDimV / 4);
    if (bytes <= maxWorkgroupBytes) {
      const blockN = numSubgroups * subgroupSize;
      return {
        blockM,
        blockN,
        workgroupSize: blockN,
        accPerThread: blockM * accWords,
        workgroupBytes: bytes,
        subgroupSize,
        numSubgroups,
        qWords,
        accWords,
      };
    }
  }
  return undefined;
}

/** mlaDecode's register budget: vec4 accumulators per lane (shaders/attention/mlaDecode.wgsl ACC_MAX). */
export const MLA_ACC_MAX = 32;
/** Most heads one mlaDecode workgroup takes (ROWS_MAX in the shader). */
export const MLA_ROWS_MAX = 32;

/**
 * mlaDecode tiles: one key per lane, BLOCK_N = workgroup size = 128; BLOCK_M = heads per
 * workgroup = the head count rounded up to a power of two, at most `maxHeads` (default 16, at most
 * 32), halved until the accumulator fits (BLOCK_M * DV4 / 128 <= 32 vec4s per lane) and the
 * probability tile the workgroup storage (4 * BLOCK_M * (128 + 3) bytes).
 * Worked examples at d_c 512 (DV4 128): H 16 -> BLOCK_M 16, 16 vec4s per lane, 8.4 KiB, one head
 * block; H 128 -> 8 head blocks of 16 (maxHeads 32: 4 blocks, 32 vec4s, 16.8 KiB, so 16 on a
 * 16 KiB adapter).
 */
export function chooseMlaDecodeTiles(
  numHeads: number,
  headDimV: number,
  maxWorkgroupBytes: number,
  maxHeads = 16,
): TileConfig {
  const blockN = 128;
  const dv4 = headDimV / 4;
  for (
    let blockM = Math.min(pow2Floor(Math.min(maxHeads, MLA_ROWS_MAX)), pow2Ceil(numHeads));
    blockM >= 1;
    blockM /= 2
  ) {
    const accPerThread = Math.ceil((blockM * dv4) / blockN);
    const bytes = 4 * blockM * (blockN + 3);
    if (accPerThread <= MLA_ACC_MAX && bytes <= maxWorkgroupBytes) {
      return { blockM, blockN, workgroupSize: blockN, accPerThread, workgroupBytes: bytes };
    }
  }
  throw new ShapeError(
    `mlaDecode: latent dim ${headDimV} does not fit ${maxWorkgroupBytes} bytes of workgroup storage`,
  );
}

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

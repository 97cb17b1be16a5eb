/**
 * Buffer helpers for set-up and tests: upload host data, read results back. Never used inside a
 * decode step (nothing is created or read back there).
 */
import type { GpuContext } from './context';

// WebGPU's GPUBufferUsage / GPUMapMode values, spelled out: in Node those globals only exist once
// Dawn is loaded, and reading them at import time would make this module impure.
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_MODE_READ = 0x1;
export const STORAGE = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC;
export const UNIFORM = USAGE.UNIFORM | USAGE.COPY_DST;
/** A host-readable buffer that copies land in (readback staging). */
export const MAP_READ_COPY_DST = USAGE.MAP_READ | USAGE.COPY_DST;

/** A storage buffer holding `data` (padded to 16 bytes). */
export async function uploadBuffer(
  ctx: GpuContext,
  label: string,
  data: ArrayBufferView,
  usage: GPUBufferUsageFlags = STORAGE,
): Promise<GPUBuffer> {
  const buffer = await ctx.createBuffer(label, data.byteLength, usage);
  writeBuffer(ctx, buffer, data);
  return buffer;
}

/** queue.writeBuffer, padding the copy to a multiple of 4 bytes as WebGPU requires. */
export function writeBuffer(ctx: GpuContext, buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    ctx.device.queue.writeBuffer(buffer, offset, bytes);
  } else {
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    ctx.device.queue.writeBuffer(buffer, offset, padded);
  }
}

/** Copies `byteLength` bytes of `buffer` from `offset` to the host (submits its own command buffer). */
export async function readBuffer(
  ctx: GpuContext,
  buffer: GPUBuffer,
  byteLength = buffer.size,
  offset = 0,
): Promise<ArrayBuffer> {
  ctx.assertAlive();
  const size = Math.ceil(byteLength / 4) * 4;
  const staging = ctx.device.createBuffer({
    label: `${buffer.label}.readback`,
    size,
    usage: MAP_READ_COPY_DST,
  });
  const encoder = ctx.device.createCommandEncoder({ label: 'readBuffer' });
  encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
  ctx.device.queue.submit([encoder.finish()]);
  try {
    await staging.mapAsync(MAP_MODE_READ);
  } catch (e) {
    ctx.assertAlive(); // a lost device explains the failure better than mapAsync's message
    throw e;
  }
  const copy = staging.getMappedRange().slice(0, byteLength);
  staging.unmap();
  staging.destroy();
  return copy;
}

export async function readFloat32(ctx: GpuContext, buffer: GPUBuffer, count: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(ctx, buffer, count * 4));
}

/** Grid for `threads` invocations in workgroups of `wg`, split into x <= maxPerDim and y. */
export function grid1D(ctx: GpuContext, threads: number, wg: number): [number, number] {
  const groups = Math.max(1, Math.ceil(threads / wg));
  const maxX = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxX) return [groups, 1];
  const y = Math.ceil(groups / maxX);
  return [Math.ceil(groups / y), y];
}

/** A bind group for group 0 of `pipeline` from binding number -> buffer (whole buffer bound). */
export function bindBuffers(
  ctx: GpuContext,
  pipeline: GPUComputePipeline,
  label: string,
  buffers: Record<number, GPUBuffer>,
): GPUBindGroup {
  return ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: Object.entries(buffers).map(([binding, buffer]) => ({ binding: Number(binding), resource: { buffer } })),
  });
}

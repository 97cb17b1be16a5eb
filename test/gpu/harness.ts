/**
 * Shared by the GPU tests: one context per test process (on the adapter the vitest project chose
 * through WEBATTN_VK_ICD), seeded random data, and the adapter-path check.
 */
import { createContext, type GpuContext } from '../../src/gpu/context';
import { STORAGE, writeBuffer } from '../../src/gpu/buffers';

let ctxPromise: Promise<GpuContext> | undefined;

export function gpu(): Promise<GpuContext> {
  ctxPromise ??= createContext();
  return ctxPromise;
}

/** Which f16 path this run must exercise, from the adapter the project selected. */
export function expectedShaderF16(): boolean | undefined {
  const icd = process.env.WEBATTN_VK_ICD ?? '';
  if (icd.includes('lvp')) return true; // lavapipe: native shader-f16
  if (icd.includes('swiftshader')) return false; // SwiftShader: packed u32 path
  return undefined;
}

/** A storage buffer filled with 0xff bytes (NaN in f32), so a kernel that skips a value fails. */
export async function poisoned(label: string, bytes: number): Promise<GPUBuffer> {
  const ctx = await gpu();
  const b = await ctx.createBuffer(label, bytes, STORAGE);
  writeBuffer(ctx, b, new Uint8Array(b.size).fill(0xff));
  return b;
}

/** Encodes one compute pass, submits it, and fails on any validation error. */
export async function dispatch(label: string, encode: (pass: GPUComputePassEncoder) => void): Promise<void> {
  const ctx = await gpu();
  await ctx.validated(label, () => {
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
  });
}

export { randomArray, rng } from '../../src/reference/random';

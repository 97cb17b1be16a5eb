/**
 * What kind of adapter a kernel runs on, for the choices that only help one kind (gated, and each
 * caller says why in a comment): a CPU implementation of WebGPU runs a workgroup's subgroups one after
 * another, where a GPU runs them side by side.
 */
import type { GpuContext } from '../gpu/context';

/** A CPU implementation of WebGPU (lavapipe, SwiftShader, or an adapter that says it is a fallback). */
export function isSoftwareAdapter(ctx: GpuContext): boolean {
  const info = ctx.adapterInfo as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader/i.test(ctx.adapterDescription);
}

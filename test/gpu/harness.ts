/**
 * Shared by the GPU tests: one context per test process (on the adapter the vitest project chose
 * through WEBATTN_VK_ICD), seeded random data, and the adapter-path check.
 */
import { createContext, type GpuContext } from '../../src/gpu/context';

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

export { randomArray, rng } from '../../src/reference/random';

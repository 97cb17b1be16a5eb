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

/** Mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform in [-amp, amp), never all zeros. */
export function randomArray(n: number, rand: () => number, amp = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * amp;
  return a;
}

/**
 * Seeded random inputs for kernel checks (tests, the demo's in-browser check, benchmarks): the
 * seed is printed with a failure so it can be replayed.
 */

/** Mulberry32: small, fast, seeded; uniform in [0, 1). */
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

/** Uniform in [-amp, amp): never all zeros, so a kernel that writes nothing cannot pass. */
export function randomArray(n: number, rand: () => number, amp = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * amp;
  return a;
}

/** randomArray(n, rng(seed)): a fresh seeded array in [-1, 1) in one call (the benchmarks' inputs). */
export function seededArray(n: number, seed: number): Float32Array {
  return randomArray(n, rng(seed));
}

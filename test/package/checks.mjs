// Checks the package test runs in Node (check-node.mjs) and in Chromium (browser-check.mjs), both
// importing the installed package: attention() and the kernel-only example against the float64
// reference, on fresh random inputs. Copied next to the installed package's examples/ by the test.
import { attention, referenceAttention, relL2 } from 'webattn';
import { pagedAttention } from './examples/kernels-only.mjs';

const rand = (n) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const sum = (a) => a.reduce((x, y) => x + y, 0);

/** attention(ctx, ...) with f16 KV: a prefill chunk next to a decode (flashPrefill), then two decodes (split-KV). */
export async function attentionCheck(ctx) {
  const errors = {};
  for (const [name, seqLensQ, seqLensKV] of [
    ['prefill', [5, 1], [37, 20]],
    ['decode', [1, 1], [300, 9]],
  ]) {
    const shape = { numHeads: 8, numKvHeads: 2, headDimQK: 32, headDimV: 32, seqLensQ, seqLensKV, causal: true };
    const q = rand(sum(seqLensQ) * 8 * 32);
    const k = rand(sum(seqLensKV) * 2 * 32);
    const v = rand(sum(seqLensKV) * 2 * 32);
    const { out } = await attention(ctx, { ...shape, q, k, v, kvDtype: 'f16', pageSize: 16 });
    errors[name] = relL2(out, referenceAttention({ ...shape, q, k, v }).out);
  }
  return errors;
}

/** examples/kernels-only.mjs on the caller's device (f32 pages laid out by hand). */
export async function kernelsCheck(device) {
  const numHeads = 4,
    numKvHeads = 2,
    headDim = 32;
  const seqs = [
    { qLen: 20, kvLen: 20 },
    { qLen: 3, kvLen: 41 },
  ];
  const q = rand(sum(seqs.map((s) => s.qLen)) * numHeads * headDim);
  const k = rand(sum(seqs.map((s) => s.kvLen)) * numKvHeads * headDim);
  const v = rand(k.length);
  const out = await pagedAttention(device, { q, k, v, numHeads, numKvHeads, headDim, seqs, pageSize: 8 });
  const ref = referenceAttention({
    q,
    k,
    v,
    numHeads,
    numKvHeads,
    headDimQK: headDim,
    headDimV: headDim,
    seqLensQ: seqs.map((s) => s.qLen),
    seqLensKV: seqs.map((s) => s.kvLen),
    causal: true,
  });
  return relL2(out, ref.out);
}

/** The device a kernel-only user would request: shader-f16 if there is one, 10 storage buffers. */
export async function requestOwnDevice(gpu) {
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter');
  const device = await adapter.requestDevice({
    requiredFeatures: adapter.features.has('shader-f16') ? ['shader-f16'] : [],
    requiredLimits: { maxStorageBuffersPerShaderStage: 10 },
  });
  return { adapter, device };
}

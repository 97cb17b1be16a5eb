/**
 * The decode GEMVs of one batch-1 step of a small model, alone: every projection of every layer and
 * the LM head (kjv-gqa: 4 layers of q, k, v, o, gate, up, down + the head = 29 dispatches), each with
 * its own random weight, encoded into one pass per weight format, the formats alternating rep by
 * rep. Reports the median wall and process-CPU ms per pass and per dispatch.
 *
 *   node bin/run-ts.js scripts/gemvShapes.ts [--hidden 128] [--inter 384] [--heads 8] [--kv 2]
 *     [--dim 16] [--vocab 2048] [--layers 4] [--reps 15] [--formats f32,f16,q8,q4,f16/workgroup] [--tokens 1]
 *     [--shape NxK --count 29]
 *
 * Select the adapter with WEBATTN_VK_ICD (see src/gpu/node.ts). A development tool, not a test.
 */
import { parseArgs } from 'node:util';
import { createContext } from '../src/gpu/context';
import { STORAGE, UNIFORM, uploadBuffer } from '../src/gpu/buffers';
import { median } from '../src/gpu/timer';
import { createMatvec, quantBufferBytes, quantMatmulParams, quantWeightBytes } from '../src/kernels/matmulQuant';
import { packQuantRows } from '../src/kernels/quantLayout';
import { quantizeBlocks } from '../src/model/quantize';
import { f32ArrayToF16 } from '../src/sources/halfFloat';
import type { MatrixDtype } from '../src/gpu/dtype';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      hidden: { type: 'string', default: '128' },
      inter: { type: 'string', default: '384' },
      heads: { type: 'string', default: '8' },
      kv: { type: 'string', default: '2' },
      dim: { type: 'string', default: '16' },
      vocab: { type: 'string', default: '2048' },
      layers: { type: 'string', default: '4' },
      reps: { type: 'string', default: '15' },
      formats: { type: 'string', default: 'f32,f16,q8,q4' },
      tokens: { type: 'string', default: '1' },
      shape: { type: 'string' }, // NxK: `count` GEMVs of this one shape instead of the model's
      count: { type: 'string', default: '29' },
    },
  });
  const n = (k: keyof typeof values) => Number(values[k]);
  const [H, I, D, L, M] = [n('hidden'), n('inter'), n('dim'), n('layers'), n('tokens')];
  const layer: [number, number][] = [
    [n('heads') * D, H],
    [n('kv') * D, H],
    [n('kv') * D, H],
    [H, n('heads') * D],
    [I, H],
    [I, H],
    [H, I],
  ];
  const one = values.shape?.split('x').map(Number) as [number, number] | undefined;
  const shapes: [number, number][] = one
    ? Array.from({ length: n('count') }, () => one)
    : [...Array.from({ length: L }, () => layer).flat(), [n('vocab'), H]];
  // A format may name its strips: f16/workgroup, f16/subgroup (MatvecOptions.strips).
  const formats = values.formats!.split(',');
  const ctx = await createContext();
  console.log(`adapter: ${ctx.adapterDescription}; ${shapes.length} GEMVs, M ${M}`);
  const maxK = Math.max(...shapes.map((s) => s[1]));
  const maxN = Math.max(...shapes.map((s) => s[0]));
  const x = await uploadBuffer(ctx, 'x', random(M * maxK, 1));
  const y = await ctx.createBuffer('y', 4 * M * maxN, STORAGE);
  const passes = new Map<string, (pass: GPUComputePassEncoder) => void>();
  for (const format of formats) {
    const [dtype, strips] = format.split('/') as [MatrixDtype, 'workgroup' | 'subgroup' | undefined];
    const encodes: ((pass: GPUComputePassEncoder) => void)[] = [];
    for (const [i, [N, K]] of shapes.entries()) {
      const spec = { N, K, weightDtype: dtype, bias: false };
      const kernel = await createMatvec(ctx, spec, strips ? { strips } : {});
      const values = random(N * K, 100 + i);
      let data: ArrayBufferView;
      if (dtype === 'f32') data = values;
      else if (dtype === 'f16') data = f32ArrayToF16(values);
      else {
        const q = dtype as 'q8' | 'q4';
        const blocks = new Uint8Array(quantWeightBytes(q, N, K));
        quantizeBlocks(q, values, blocks);
        const packed = new Uint8Array(quantBufferBytes(q, N, K));
        packQuantRows(q, blocks, N, K, packed);
        data = packed;
      }
      const w = await uploadBuffer(ctx, `w${i}`, data);
      const params = await uploadBuffer(ctx, `p${i}`, quantMatmulParams(spec, M), UNIFORM);
      const bind = kernel.bind({ x, w, y, params });
      encodes.push((pass) => kernel.encode(pass, bind, M));
    }
    passes.set(format, (pass) => {
      for (const e of encodes) e(pass);
    });
  }
  const run = async (encode: (pass: GPUComputePassEncoder) => void) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encode(pass);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    const c = process.cpuUsage(c0);
    return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
  };
  for (const e of passes.values()) await run(e); // compile at first use
  const times = new Map<string, { wall: number; cpu: number }[]>();
  for (let r = 0; r < n('reps'); r++) {
    for (const [d, e] of passes) times.set(d, [...(times.get(d) ?? []), await run(e)]);
  }
  console.log('| format | wall ms / pass | CPU ms / pass | wall ms / dispatch |');
  console.log('|---|---:|---:|---:|');
  for (const [d, ts] of times) {
    const wall = median(ts.map((t) => t.wall));
    const cpu = median(ts.map((t) => t.cpu));
    console.log(`| ${d} | ${wall.toFixed(2)} | ${cpu.toFixed(2)} | ${(wall / shapes.length).toFixed(3)} |`);
  }
  ctx.destroy();
  return 0;
}

function random(count: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

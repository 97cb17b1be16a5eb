/**
 * Which kernels take a runtime's prefill, measured in the e2e page (`npm run bench:e2e -- --profile
 * kjv-mha:240`): GPU time per kernel from timestamp queries (the `timestamp-query` feature, as
 * src/gpu/timer.ts times a pass), for webattn and for transformers.js's ORT WebGPU EP alike, with no
 * change to either runtime.
 *
 * How: while a profiled generate (the prompt and one new token: the prefill) runs, the page's
 * GPUCommandEncoder.beginComputePass hands out a recorder instead of a pass. It records
 * setPipeline / setBindGroup / dispatch calls; at end() it replays every dispatch in a compute pass
 * of its own with the current pipeline and bind groups and beginning/end timestamp writes, and the
 * encoder's finish() resolves the queries into a buffer read after the step. A kernel is its
 * pipeline's label (webattn: `name/variant?constants.pipeline`, shown as `name/variant`; ORT labels
 * its programs with the op's kernel name). One pass per dispatch adds a little per-dispatch overhead
 * and removes any overlap between dispatches; the profiled step's wall time is reported beside the
 * unprofiled one so the cost of the method is visible.
 */
import { makePrompt, modelInfo, withoutSubgroups } from './e2eBench';
import { BENCH_URLS, LOADERS, type RuntimeName, type RuntimeUrls } from './runtimes';

export interface KernelTime {
  kernel: string;
  dispatches: number;
  ms: number;
  /** An unlabelled pipeline (ORT's): its WGSL's entry-point line and bindings, to tell what it is. */
  wgsl?: string;
}

export interface PrefillProfile {
  model: string;
  runtime: RuntimeName;
  backend: string;
  tokens: number;
  /** Median TTFT of unprofiled runs (after a warm-up), ms. */
  ttftMs: number;
  /** TTFT of the profiled run (one pass per dispatch), ms. */
  profiledTtftMs: number;
  /** Sum of the kernels' GPU times, ms. */
  gpuMs: number;
  /** By GPU time, largest first. */
  kernels: KernelTime[];
}

export interface ProfileOptions {
  model: string;
  tokens: number;
  runtimes?: readonly RuntimeName[];
  tjsGraph?: 'gqa' | 'plain';
  reps?: number;
  urls?: RuntimeUrls;
  onProgress?: (msg: string) => void;
}

interface Recorded {
  pipeline: GPUComputePipeline;
  querySet: GPUQuerySet;
  index: number;
}

let armed = false;
const encoderDevice = new WeakMap<GPUCommandEncoder, GPUDevice>();
const encoderQueries = new WeakMap<GPUCommandEncoder, { sets: GPUQuerySet[]; used: number }>();
/** Per profiled step: the dispatches and, once submitted, the buffers their timestamps land in. */
let records: Recorded[] = [];
/** Pipeline → its shader's WGSL (ORT labels none of its pipelines: its kernels are told apart by code). */
const pipelineCode = new WeakMap<GPUComputePipeline, string>();
const moduleCode = new WeakMap<GPUShaderModule, string>();
const readbacks = new Map<GPUQuerySet, GPUBuffer>();
const QUERIES_PER_SET = 4096;

/** FNV-1a of the WGSL, for a short stable name of an unlabelled kernel. */
function hashOf(code: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < code.length; i++) h = Math.imul(h ^ code.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** What identifies an unlabelled kernel's WGSL: its bindings and the start of its entry point. */
function wgslSummary(code: string): string {
  const lines = code.split('\n').map((l) => l.trim());
  const bindings = lines
    .filter((l) => l.startsWith('@group'))
    .map((l) => l.replace(/^@group\(0\) @binding\(\d+\) /, ''));
  const main = code.indexOf('fn main');
  const body = main < 0 ? '' : code.slice(main, main + 600).replace(/\s+/g, ' ');
  return `${bindings.join('; ')} || ${body}`.slice(0, 900);
}

/** Pipeline → kernel name: webattn's label `name/variant?k=v.pipeline` → `name/variant`; else a hash of its WGSL. */
function kernelOf(pipeline: GPUComputePipeline): { kernel: string; wgsl?: string } {
  const l = pipeline.label.replace(/\.pipeline$/, '');
  if (l) return { kernel: l.includes('?') ? l.slice(0, l.indexOf('?')) : l };
  const code = pipelineCode.get(pipeline);
  return code ? { kernel: `wgsl#${hashOf(code)}`, wgsl: wgslSummary(code) } : { kernel: '(unlabelled)' };
}

function querySlot(encoder: GPUCommandEncoder): [GPUQuerySet, number] {
  const device = encoderDevice.get(encoder);
  if (!device) throw new Error('profile: an encoder made before the hooks were installed');
  if (!device.features.has('timestamp-query')) throw new Error('profile: the device has no timestamp-query');
  let q = encoderQueries.get(encoder);
  if (!q) encoderQueries.set(encoder, (q = { sets: [], used: QUERIES_PER_SET }));
  if (q.used + 2 > QUERIES_PER_SET) {
    q.sets.push(device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET, label: 'profile' }));
    q.used = 0;
  }
  const slot = q.used;
  q.used += 2;
  return [q.sets[q.sets.length - 1], slot];
}

export function installProfileHooks(): void {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = function (this: GPUAdapter, desc?: GPUDeviceDescriptor) {
    // Every runtime's device gets timestamp-query where the adapter has it.
    const features = [...(desc?.requiredFeatures ?? [])];
    if (this.features.has('timestamp-query') && !features.includes('timestamp-query')) features.push('timestamp-query');
    return requestDevice.call(this, { ...desc, requiredFeatures: features });
  };
  const createModule = GPUDevice.prototype.createShaderModule;
  GPUDevice.prototype.createShaderModule = function (this: GPUDevice, desc: GPUShaderModuleDescriptor) {
    const m = createModule.call(this, desc);
    moduleCode.set(m, desc.code);
    return m;
  };
  const withCode = (p: GPUComputePipeline, desc: GPUComputePipelineDescriptor) => {
    const code = moduleCode.get(desc.compute.module);
    if (code) pipelineCode.set(p, code);
    return p;
  };
  const createPipeline = GPUDevice.prototype.createComputePipeline;
  GPUDevice.prototype.createComputePipeline = function (this: GPUDevice, desc: GPUComputePipelineDescriptor) {
    return withCode(createPipeline.call(this, desc), desc);
  };
  const createPipelineAsync = GPUDevice.prototype.createComputePipelineAsync;
  GPUDevice.prototype.createComputePipelineAsync = async function (
    this: GPUDevice,
    desc: GPUComputePipelineDescriptor,
  ) {
    return withCode(await createPipelineAsync.call(this, desc), desc);
  };
  const createEncoder = GPUDevice.prototype.createCommandEncoder;
  GPUDevice.prototype.createCommandEncoder = function (this: GPUDevice, desc?: GPUCommandEncoderDescriptor) {
    const e = createEncoder.call(this, desc);
    encoderDevice.set(e, this);
    return e;
  };
  const beginPass = GPUCommandEncoder.prototype.beginComputePass;
  GPUCommandEncoder.prototype.beginComputePass = function (
    this: GPUCommandEncoder,
    desc?: GPUComputePassDescriptor,
  ): GPUComputePassEncoder {
    if (!armed || desc?.timestampWrites) return beginPass.call(this, desc);
    const encoder = this;
    let pipeline: GPUComputePipeline | null = null;
    const groups = new Map<number, unknown[]>();
    const dispatches: { pipeline: GPUComputePipeline; groups: unknown[][]; run: (p: GPUComputePassEncoder) => void }[] =
      [];
    const record = (run: (p: GPUComputePassEncoder) => void) => {
      if (!pipeline) throw new Error('profile: a dispatch with no pipeline set');
      dispatches.push({ pipeline, groups: [...groups.values()], run });
    };
    const recorder = {
      label: desc?.label ?? '',
      setPipeline(p: GPUComputePipeline) {
        pipeline = p;
      },
      setBindGroup(...args: unknown[]) {
        // The (index, group, data, start, length) form points into a buffer the caller reuses (ORT's
        // wasm heap): keep a copy of the offsets for the replay.
        if (args.length === 5 && args[2] instanceof Uint32Array) {
          const [index, group, data, start, length] = args as [number, GPUBindGroup, Uint32Array, number, number];
          args = [index, group, Array.from(data.subarray(start, start + length))];
        }
        groups.set(args[0] as number, args);
      },
      dispatchWorkgroups(x: number, y?: number, z?: number) {
        record((p) => p.dispatchWorkgroups(x, y, z));
      },
      dispatchWorkgroupsIndirect(buffer: GPUBuffer, offset: number) {
        record((p) => p.dispatchWorkgroupsIndirect(buffer, offset));
      },
      pushDebugGroup() {},
      popDebugGroup() {},
      insertDebugMarker() {},
      end() {
        for (const d of dispatches) {
          const [querySet, index] = querySlot(encoder);
          const pass = beginPass.call(encoder, {
            label: d.pipeline.label,
            timestampWrites: { querySet, beginningOfPassWriteIndex: index, endOfPassWriteIndex: index + 1 },
          });
          pass.setPipeline(d.pipeline);
          for (const g of d.groups) (pass.setBindGroup as (...a: unknown[]) => void)(...g);
          d.run(pass);
          pass.end();
          records.push({ pipeline: d.pipeline, querySet, index });
        }
      },
    };
    return recorder as unknown as GPUComputePassEncoder;
  };
  const finish = GPUCommandEncoder.prototype.finish;
  GPUCommandEncoder.prototype.finish = function (this: GPUCommandEncoder, desc?: GPUCommandBufferDescriptor) {
    const q = encoderQueries.get(this);
    const device = encoderDevice.get(this);
    if (q && device)
      for (const set of q.sets) {
        const bytes = QUERIES_PER_SET * 8;
        const resolve = device.createBuffer({ size: bytes, usage: 0x200 /* QUERY_RESOLVE */ | 0x4 /* COPY_SRC */ });
        const read = device.createBuffer({ size: bytes, usage: 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */ });
        this.resolveQuerySet(set, 0, QUERIES_PER_SET, resolve, 0);
        this.copyBufferToBuffer(resolve, 0, read, 0, bytes);
        readbacks.set(set, read);
      }
    encoderQueries.delete(this);
    return finish.call(this, desc);
  };
}

/** GPU ms per kernel of what ran while armed. */
async function collect(): Promise<KernelTime[]> {
  const stamps = new Map<GPUQuerySet, BigInt64Array>();
  for (const [set, buf] of readbacks) {
    await buf.mapAsync(0x1 /* GPUMapMode.READ */);
    stamps.set(set, new BigInt64Array(buf.getMappedRange().slice(0)));
    buf.destroy();
    set.destroy();
  }
  readbacks.clear();
  const by = new Map<string, KernelTime>();
  for (const r of records) {
    const s = stamps.get(r.querySet);
    if (!s) throw new Error(`profile: no timestamps for ${r.pipeline.label} (its encoder was never finished)`);
    const ms = Number(s[r.index + 1] - s[r.index]) / 1e6;
    const { kernel, wgsl } = kernelOf(r.pipeline);
    const t = by.get(kernel) ?? { kernel, dispatches: 0, ms: 0, ...(wgsl ? { wgsl } : {}) };
    t.dispatches++;
    t.ms += ms;
    by.set(kernel, t);
  }
  records = [];
  return [...by.values()].sort((a, b) => b.ms - a.ms);
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

export async function profilePrefill(opts: ProfileOptions): Promise<PrefillProfile[]> {
  const urls = opts.urls ?? BENCH_URLS;
  const log = opts.onProgress ?? (() => {});
  const info = await modelInfo(urls, opts.model);
  const out: PrefillProfile[] = [];
  let seed = 5000;
  for (const name of opts.runtimes ?? (['webattn', 'transformers.js'] as const)) {
    const load = () =>
      LOADERS[name]({
        name: opts.model,
        urls,
        maxContext: Math.min(info.maxContext, opts.tokens + 64),
        format: 'f32',
        tjsGraph: opts.tjsGraph ?? 'gqa',
        log,
      });
    // ORT's device as the bench gives it: without subgroups (e2eBench.ts ortSubgroups).
    const rt = name === 'transformers.js' ? await withoutSubgroups(load) : await load();
    try {
      const prompt = () => makePrompt(info.tok, info.words, seed++, opts.tokens);
      await rt.generate(prompt(), 2); // warm-up: compiles
      const ttft: number[] = [];
      for (let i = 0; i < (opts.reps ?? 3); i++) ttft.push((await rt.generate(prompt(), 2)).ttftMs);
      armed = true;
      let profiled: number;
      try {
        profiled = (await rt.generate(prompt(), 1)).ttftMs;
      } finally {
        armed = false;
      }
      const kernels = await collect();
      const gpuMs = kernels.reduce((a, k) => a + k.ms, 0);
      log(
        `${opts.model} ${name} (${rt.backend}) prefill ${opts.tokens}: TTFT ${median(ttft).toFixed(0)} ms, ` +
          `profiled ${profiled.toFixed(0)} ms, GPU ${gpuMs.toFixed(0)} ms in ${kernels.length} kernels`,
      );
      out.push({
        model: opts.model,
        runtime: name,
        backend: rt.backend,
        tokens: opts.tokens,
        ttftMs: median(ttft),
        profiledTtftMs: profiled,
        gpuMs,
        kernels,
      });
    } finally {
      await rt.dispose();
    }
  }
  return out;
}

/** The profiles as Markdown: per runtime, the kernels by share of the prefill's GPU time. */
export function formatProfiles(adapter: string, profiles: PrefillProfile[]): string {
  const lines = [`Adapter: ${adapter}. GPU time per kernel (timestamp queries, one pass per dispatch).`, ''];
  for (const p of profiles) {
    lines.push(
      `### ${p.model}, ${p.runtime} (${p.backend}), prefill of ${p.tokens} tokens`,
      '',
      `TTFT ${p.ttftMs.toFixed(0)} ms unprofiled (median), ${p.profiledTtftMs.toFixed(0)} ms profiled; ` +
        `GPU time ${p.gpuMs.toFixed(0)} ms.`,
      '',
      '| kernel | dispatches | GPU ms | share |',
      '|---|---:|---:|---:|',
      ...p.kernels.map(
        (k) => `| ${k.kernel} | ${k.dispatches} | ${k.ms.toFixed(1)} | ${((100 * k.ms) / p.gpuMs).toFixed(1)}% |`,
      ),
      '',
    );
  }
  return lines.join('\n');
}

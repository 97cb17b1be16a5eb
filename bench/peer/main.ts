/**
 * The peer bench page: loads onnxruntime-web from /ort/ (its dist folder, served as is by the
 * runner, so ORT finds its .wasm next to itself), opens a GPU context and hands both to
 * runPeerBench. The runner calls window.runPeer(options) and gets the report back.
 *
 * The device: the adapter's real limits, `shader-f16` and `timestamp-query` when present, and
 * `subgroups` only when asked. onnxruntime-web 1.30 picks a subgroup FlashAttention prefill when the
 * device has `subgroups`, and on SwiftShader that path returns wrong outputs (rel L2 0.6 against
 * the float64 reference, where ORT's wasm EP and its no-subgroups WebGPU path agree with webattn to
 * 1e-7); webattn's kernels use no subgroups, so leaving the feature out changes nothing on its side.
 */
import { GpuContext } from '../../src/gpu/context';
import { NoWebGpuError } from '../../src/gpu/errors';
import { runPeerBench, type OrtModule, type PeerOptions, type PeerReport } from './peerBench';

export interface PageOptions extends Omit<PeerOptions, 'onProgress' | 'onRow' | 'signal'> {
  /** Give the device `subgroups` when the adapter has it (default false, see above). */
  subgroups?: boolean;
}

declare global {
  interface Window {
    runPeer(opts: PageOptions): Promise<PeerReport>;
  }
}

/** Where the runner serves node_modules/onnxruntime-web/dist. */
const ORT_BASE = '/ort/';

const log = (msg: string) => {
  console.log(`[peer] ${msg}`);
  document.getElementById('log')!.textContent += `${msg}\n`;
};

async function openContext(subgroups: boolean): Promise<GpuContext> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoWebGpuError('no WebGPU adapter in this browser');
  const wanted = ['shader-f16', 'timestamp-query', ...(subgroups ? ['subgroups'] : [])] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const limits = [
    'maxComputeWorkgroupStorageSize',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ] as const;
  const requiredLimits = Object.fromEntries(limits.map((k) => [k, adapter.limits[k]]));
  const device = await adapter.requestDevice({ label: 'webattn-peer', requiredFeatures, requiredLimits });
  const has = (f: string) => device.features.has(f);
  return new GpuContext(device, adapter.info, {
    shaderF16: has('shader-f16'),
    subgroups: has('subgroups'),
    timestampQuery: has('timestamp-query'),
  });
}

window.runPeer = async ({ subgroups = false, ...opts }) => {
  // A URL in a variable: Vite leaves the import alone and the browser fetches ORT's own file.
  const url = `${ORT_BASE}ort.webgpu.min.mjs`;
  const ort = (await import(/* @vite-ignore */ url)) as OrtModule;
  ort.env.wasm.wasmPaths = ORT_BASE;
  ort.env.logLevel = 'warning';
  log(`crossOriginIsolated ${crossOriginIsolated}; device subgroups ${subgroups ? 'if the adapter has them' : 'off'}`);
  const ctx = await openContext(subgroups);
  try {
    return await runPeerBench(ctx, ort, { ...opts, onProgress: log });
  } finally {
    ctx.destroy();
  }
};

document.body.dataset.ready = '1';

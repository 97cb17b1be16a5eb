/**
 * The GPU context: one adapter + device, its real limits and optional features, and the pipeline
 * cache. Works in the browser (`navigator.gpu`) and in Node (Dawn through the `webgpu` package).
 */
import { DeviceLostError, NoWebGpuError, OutOfMemoryError, WebAttnError } from './errors';
import { PipelineCache } from './pipelineCache';

export interface ContextOptions {
  powerPreference?: GPUPowerPreference;
  /** Use `shader-f16` when the adapter has it (default true). False forces the packed-u32 f16 path. */
  allowShaderF16?: boolean;
}

export interface GpuFeatures {
  /** Native f16 arithmetic and storage in WGSL (`enable f16;`). */
  shaderF16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
}

export class GpuContext {
  readonly pipelines: PipelineCache;
  /** Set once the device is lost; every later call throws DeviceLostError with this reason. */
  lostReason: string | undefined;

  constructor(
    readonly device: GPUDevice,
    readonly adapterInfo: GPUAdapterInfo,
    readonly features: GpuFeatures,
  ) {
    this.pipelines = new PipelineCache(device);
    device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** e.g. "mesa llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" — printed by the CLI and the bench. */
  get adapterDescription(): string {
    const i = this.adapterInfo;
    const parts = [i.vendor, i.architecture, i.description || i.device].filter((s) => s);
    return parts.join(' ') || 'unknown adapter';
  }

  assertAlive(): void {
    if (this.lostReason !== undefined) throw new DeviceLostError(`GPU device lost (${this.lostReason})`);
  }

  /**
   * Creates a buffer, checking the adapter's limits first and the device's out-of-memory scope
   * after: a failed allocation becomes an OutOfMemoryError naming the buffer, never a silent
   * invalid buffer. Async because error scopes are. Not for the hot path (nothing allocates there).
   */
  async createBuffer(label: string, size: number, usage: GPUBufferUsageFlags): Promise<GPUBuffer> {
    this.assertAlive();
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    if (bytes > this.limits.maxBufferSize) {
      throw new OutOfMemoryError(
        `${label}: ${bytes} bytes exceeds this adapter's maxBufferSize (${this.limits.maxBufferSize})`,
      );
    }
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const buffer = this.device.createBuffer({ label, size: bytes, usage });
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (oom || validation) {
      buffer.destroy();
      const what = oom ? 'out of GPU memory' : `invalid buffer (${validation!.message})`;
      throw new OutOfMemoryError(`${label}: ${what} allocating ${bytes} bytes`);
    }
    return buffer;
  }

  /**
   * Runs `fn` (which creates bind groups, encodes, submits) inside a validation error scope and
   * throws a WebAttnError naming `label` if WebGPU rejected anything: without the scope such errors
   * only reach the console and the result would silently be garbage.
   */
  async validated<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
    this.assertAlive();
    this.device.pushErrorScope('validation');
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await fn() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    // Popped whether or not fn threw; a validation error says more than what fn threw, so it wins.
    const err = await this.device.popErrorScope();
    if (err) throw new WebAttnError(`${label}: WebGPU validation failed: ${err.message.split('\n')[0]}`);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  destroy(): void {
    this.pipelines.clear();
    this.device.destroy();
  }
}

/**
 * Storage buffers flashPrefill and splitKvDecode bind at once (bindings 0..10 of pagedAttention.ts
 * less the uniform).
 */
const MIN_STORAGE_BUFFERS = 10;

/**
 * Wraps a GPUDevice the caller already has (their own app's, a three.js or onnxruntime-web device)
 * into a GpuContext, so the kernels of `webattn/kernels` run on it. Features are read from the
 * device; `shader-f16` is used only if the device was requested with it. Pass the adapter's info
 * when you have it (only descriptions use it). The context does not own the device for anything
 * but `destroy()`: do not call that if the device is still yours to use.
 *
 * The attention kernels bind 10 storage buffers, more than WebGPU's default limit of 8: request
 * the device with that limit raised (`adapter.limits.maxStorageBuffersPerShaderStage` says whether
 * the adapter can; `createContext` always asks for the adapter's full limits). A device without it
 * is refused here, with that advice.
 *
 *   const device = await adapter.requestDevice({
 *     requiredFeatures: adapter.features.has('shader-f16') ? ['shader-f16'] : [],
 *     requiredLimits: { maxStorageBuffersPerShaderStage: 10 },
 *   });
 *   const ctx = contextFromDevice(device, adapter.info);
 */
export function contextFromDevice(device: GPUDevice, adapterInfo?: GPUAdapterInfo): GpuContext {
  if (device.limits.maxStorageBuffersPerShaderStage < MIN_STORAGE_BUFFERS) {
    throw new WebAttnError(
      `contextFromDevice: the device allows ${device.limits.maxStorageBuffersPerShaderStage} storage buffers ` +
        `per shader stage; the attention kernels bind ${MIN_STORAGE_BUFFERS}. ` +
        `Request it with requiredLimits: { maxStorageBuffersPerShaderStage: ${MIN_STORAGE_BUFFERS} }`,
    );
  }
  const has = (f: string) => device.features.has(f);
  const info =
    adapterInfo ??
    ({ vendor: '', architecture: '', device: '', description: 'caller-provided device' } as GPUAdapterInfo);
  return new GpuContext(device, info, {
    shaderF16: has('shader-f16'),
    subgroups: has('subgroups'),
    timestampQuery: has('timestamp-query'),
  });
}

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups' as GPUFeatureName, 'timestamp-query'];

/** Requests an adapter and a device with the adapter's real limits and the optional features. */
export async function createContext(opts: ContextOptions = {}): Promise<GpuContext> {
  let gpu: GPU | undefined = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
  const inNode = typeof process !== 'undefined' && !!process.versions?.node && !gpu;
  if (!gpu && inNode) gpu = await (await import('./node')).nodeGpu();
  if (!gpu) throw new NoWebGpuError('This browser has no WebGPU (navigator.gpu is missing).');
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new NoWebGpuError(
      inNode
        ? 'No WebGPU adapter: install a GPU driver or a software Vulkan driver ' +
            '(lavapipe: mesa-vulkan-drivers; SwiftShader: chromium), or set WEBATTN_VK_ICD'
        : 'WebGPU is present but no adapter was found (GPU blocklisted or disabled).',
    );
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter(
    (f) => adapter.features.has(f) && (f !== 'shader-f16' || opts.allowShaderF16 !== false),
  );
  const want = [
    'maxComputeWorkgroupStorageSize',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ] as const;
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k];
  const device = await adapter.requestDevice({ label: 'webattn', requiredFeatures, requiredLimits });
  const has = (f: string) => device.features.has(f);
  return new GpuContext(device, adapter.info, {
    shaderF16: has('shader-f16'),
    subgroups: has('subgroups'),
    timestampQuery: has('timestamp-query'),
  });
}

/**
 * Times one compute pass: GPU timestamps (`timestamp-query`) where the device has them, else the
 * wall clock from submit to onSubmittedWorkDone. Set-up and benchmarks only: each measurement
 * submits its own command buffer and reads back.
 */
import type { GpuContext } from './context';
import { readBuffer } from './buffers';

export type TimingSource = 'timestamp-query' | 'wall-clock';

export class PassTimer {
  private constructor(
    private readonly ctx: GpuContext,
    private readonly querySet: GPUQuerySet | undefined,
    private readonly resolve: GPUBuffer | undefined,
  ) {}

  static create(ctx: GpuContext): PassTimer {
    if (!ctx.features.timestampQuery) return new PassTimer(ctx, undefined, undefined);
    const querySet = ctx.device.createQuerySet({ label: 'passTimer.querySet', type: 'timestamp', count: 2 });
    const resolve = ctx.device.createBuffer({
      label: 'passTimer.resolve',
      size: 16,
      usage: 0x200 /* QUERY_RESOLVE */ | 0x4 /* COPY_SRC */,
    });
    return new PassTimer(ctx, querySet, resolve);
  }

  get source(): TimingSource {
    return this.querySet ? 'timestamp-query' : 'wall-clock';
  }

  /** Milliseconds one pass of `encode` takes (one submission; the first call also compiles). */
  async time(label: string, encode: (pass: GPUComputePassEncoder) => void): Promise<number> {
    const device = this.ctx.device;
    const encoder = device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass({
      label,
      timestampWrites: this.querySet
        ? { querySet: this.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 }
        : undefined,
    });
    encode(pass);
    pass.end();
    if (this.querySet && this.resolve) encoder.resolveQuerySet(this.querySet, 0, 2, this.resolve, 0);
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wall = performance.now() - t0;
    if (!this.resolve) return wall;
    const ns = new BigInt64Array(await readBuffer(this.ctx, this.resolve, 16));
    const gpuMs = Number(ns[1] - ns[0]) / 1e6;
    // Some drivers report zeros or garbage when a pass is split; fall back to the wall clock.
    return gpuMs > 0 && gpuMs <= wall * 1.5 + 1 ? gpuMs : wall;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolve?.destroy();
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

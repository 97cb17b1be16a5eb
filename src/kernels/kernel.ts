/**
 * The base every kernel wrapper in src/kernels stands on. A wrapper is: a static `create` that
 * checks its spec and the adapter's capacity and compiles through the pipeline cache
 * (`Kernel.compile`), a `bind(args)` taking NAMED buffers that checks their sizes and calls
 * `this.bindGroup`, and a `grid(n)` saying how many workgroups n units of work take. `encode`
 * is shared: it checks n against what the bound buffers hold, then sets the pipeline and the
 * bind group and dispatches. Nothing here submits, allocates per step or reads back.
 *
 *   class Scale extends Kernel<{ x: GPUBuffer; y: GPUBuffer; params: GPUBuffer }> {
 *     static async create(ctx: GpuContext, dim: number): Promise<Scale> {
 *       const pipeline = await Kernel.compile(ctx, 'scale', kernelSource('scale'), { DIM: dim }, { invocations: 64 });
 *       return new Scale({ ctx, name: 'scale', pipeline, bindings: { x: 0, y: 1, params: 2 }, unit: 'rows' }, dim);
 *     }
 *     private constructor(init: KernelInit, readonly dim: number) { super(init); }
 *     bind(b: { x: GPUBuffer; y: GPUBuffer; params: GPUBuffer }): GPUBindGroup {
 *       this.need('x', b.x, this.dim * 4, `one row of ${this.dim} f32`);
 *       return this.bindGroup(b, Math.floor(Math.min(b.x.size, b.y.size) / (this.dim * 4)));
 *     }
 *     grid(rows: number): Grid { return this.grid1D(rows * this.dim, 64); }
 *   }
 */
import type { GpuContext } from '../gpu/context';
import type { KernelSource } from '../gpu/pipelineCache';
import { ShapeError } from '../gpu/errors';
import { grid1D, STORAGE } from '../gpu/buffers';

/** Workgroups along x, y and z of one dispatch (y and z default to 1). */
export type Grid = readonly [x: number, y?: number, z?: number];

/** Binding number (group 0) of each named bind argument, e.g. { x: 0, weight: 2, y: 3, params: 4 }. */
export type BindingTable = Readonly<Record<string, number>>;

/** What the adapter must allow for a pipeline to run, checked before compiling. */
export interface WorkgroupNeeds {
  /** Invocations per workgroup (maxComputeInvocationsPerWorkgroup). */
  invocations?: number;
  /** Bytes of var<workgroup> storage (maxComputeWorkgroupStorageSize). */
  workgroupBytes?: number;
}

export interface KernelInit {
  ctx: GpuContext;
  /** Kernel name, in labels ('rmsNorm.bindGroup') and errors ('rmsNorm: ...'). */
  name: string;
  pipeline: GPUComputePipeline;
  bindings: BindingTable;
  /** What encode's n counts, for its errors: 'rows', 'tokens', 'work items'. */
  unit: string;
  /** Buffers the kernel owns (placeholders for unused bindings), destroyed by destroy(). */
  owned?: GPUBuffer[];
}

/** Throws a ShapeError naming the kernel when the adapter cannot run a workgroup of this size. */
export function checkWorkgroup(ctx: GpuContext, name: string, needs: WorkgroupNeeds): void {
  const l = ctx.limits;
  if (needs.invocations !== undefined && needs.invocations > l.maxComputeInvocationsPerWorkgroup) {
    throw new ShapeError(
      `${name}: needs ${needs.invocations} invocations per workgroup; ` +
        `this adapter allows ${l.maxComputeInvocationsPerWorkgroup}`,
    );
  }
  if (needs.workgroupBytes !== undefined && needs.workgroupBytes > l.maxComputeWorkgroupStorageSize) {
    throw new ShapeError(
      `${name}: needs ${needs.workgroupBytes} bytes of workgroup storage; ` +
        `this adapter allows ${l.maxComputeWorkgroupStorageSize}`,
    );
  }
}

/** Throws a ShapeError when `bytes` of one binding pass maxStorageBufferBindingSize. */
export function checkBindingSize(ctx: GpuContext, name: string, what: string, bytes: number, hint = ''): void {
  const limit = ctx.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new ShapeError(
      `${name}: ${what} is ${bytes} bytes, over this adapter's maxStorageBufferBindingSize (${limit})` +
        (hint ? `; ${hint}` : ''),
    );
  }
}

export abstract class Kernel<Args> {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  protected readonly ctx: GpuContext;
  private readonly bindings: BindingTable;
  private readonly unit: string;
  private readonly owned: GPUBuffer[];
  /** Units of work the buffers of each bind group hold, checked by encode. */
  private readonly capacities = new WeakMap<GPUBindGroup, number>();

  protected constructor(init: KernelInit) {
    this.ctx = init.ctx;
    this.name = init.name;
    this.pipeline = init.pipeline;
    this.bindings = init.bindings;
    this.unit = init.unit;
    this.owned = init.owned ?? [];
  }

  /** Checks the workgroup against the adapter, then gets or compiles the pipeline (cached by source + constants). */
  static async compile(
    ctx: GpuContext,
    name: string,
    source: KernelSource,
    constants: Record<string, number>,
    needs: WorkgroupNeeds = {},
  ): Promise<GPUComputePipeline> {
    checkWorkgroup(ctx, name, needs);
    return ctx.pipelines.get(source, constants);
  }

  /** A 16-byte storage buffer bound where a variant never reads or writes (WebGPU binds every slot). */
  static placeholder(ctx: GpuContext, label: string): Promise<GPUBuffer> {
    return ctx.createBuffer(label, 16, STORAGE);
  }

  /** Checks the named buffers and returns their bind group (created once, reused every step). */
  abstract bind(args: Args): GPUBindGroup;

  /** Workgroups that `n` (>= 1) units of work take. */
  abstract grid(n: number): Grid;

  /** Extra checks on n before encoding (e.g. matvec's most tokens); throws a ShapeError. */
  protected checkCount(_n: number): void {}

  /**
   * The bind group of `buffers`, by argument name (every name of the binding table, nothing else),
   * labelled `<name>.bindGroup`; `capacity` units of work are what encode will accept with it.
   */
  protected bindGroup(named: object, capacity = Infinity, label = 'bindGroup'): GPUBindGroup {
    const buffers = named as { readonly [arg: string]: GPUBuffer | undefined };
    const entries: GPUBindGroupEntry[] = [];
    for (const [arg, binding] of Object.entries(this.bindings)) {
      const buffer = buffers[arg];
      if (!buffer) throw new ShapeError(`${this.name}: bind argument '${arg}' (binding ${binding}) is missing`);
      entries.push({ binding, resource: { buffer } });
    }
    for (const arg of Object.keys(buffers)) {
      if (!(arg in this.bindings)) throw new ShapeError(`${this.name}: '${arg}' is not a binding of this kernel`);
    }
    const group = this.ctx.device.createBindGroup({
      label: `${this.name}.${label}`,
      layout: this.pipeline.getBindGroupLayout(0),
      entries,
    });
    this.capacities.set(group, capacity);
    return group;
  }

  /** Units of work the buffers of `bindGroup` hold (0 for a group this kernel did not make). */
  capacity(bindGroup: GPUBindGroup): number {
    return this.capacities.get(bindGroup) ?? 0;
  }

  /** Throws unless `buffer` holds at least `bytes` (shape: what those bytes are, for the message). */
  protected need(what: string, buffer: GPUBuffer, bytes: number, shape: string): void {
    if (buffer.size < bytes) {
      throw new ShapeError(
        `${this.name}: ${what} (${buffer.label || 'unlabelled'}) holds ${buffer.size} bytes, ${shape} needs ${bytes}`,
      );
    }
  }

  /** A 1-D grid of `threads` invocations in workgroups of `wg`, folded into (x, y) past the per-dimension limit. */
  protected grid1D(threads: number, wg: number): Grid {
    return grid1D(this.ctx, threads, wg);
  }

  /**
   * Dispatches `n` units of work (rows, tokens, work items: what the params uniform says); 0
   * encodes nothing. n must be an integer the bound buffers hold.
   */
  encode(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, n: number): void {
    if (!Number.isInteger(n) || n < 0)
      throw new ShapeError(`${this.name}: ${this.unit} must be an integer >= 0, got ${n}`);
    this.checkCount(n);
    const capacity = this.capacity(bindGroup);
    if (n > capacity) throw new ShapeError(`${this.name}: ${n} ${this.unit} but the bound buffers hold ${capacity}`);
    if (n === 0) return;
    const [x, y = 1, z = 1] = this.grid(n);
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
  }

  /** Destroys the buffers the kernel owns (placeholders); the pipeline stays in the cache. */
  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

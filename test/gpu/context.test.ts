/** The GPU layer: adapter selection, pipeline cache, and typed errors that name what went wrong. */
import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/gpu/context';
import { DeviceLostError, OutOfMemoryError, ShaderCompileError } from '../../src/gpu/errors';
import { STORAGE } from '../../src/gpu/buffers';
import { kernelSource } from '../../src/kernels/sources';
import { gpu } from './harness';

describe('GPU context', () => {
  it('names its adapter and reports the adapter limits the kernels size themselves by', async () => {
    const ctx = await gpu();
    expect(ctx.adapterDescription.length).toBeGreaterThan(3);
    expect(ctx.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
    expect(ctx.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
  });

  it('caches pipelines by kernel and override constants', async () => {
    const ctx = await gpu();
    const src = kernelSource('mergePartials');
    const a = await ctx.pipelines.get(src, { NUM_HEADS: 3, HEAD_DIM_V: 64 });
    const b = await ctx.pipelines.get(src, { HEAD_DIM_V: 64, NUM_HEADS: 3 });
    const c = await ctx.pipelines.get(src, { NUM_HEADS: 4, HEAD_DIM_V: 64 });
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('a WGSL compile error names the kernel file and the line in that file', async () => {
    const ctx = await gpu();
    const broken = {
      name: 'broken',
      variant: 'test',
      parts: [
        { file: 'shaders/common/word4F32.wgsl', code: 'alias Word4 = vec4<f32>;\n' },
        {
          file: 'shaders/test/broken.wgsl',
          code: '// line 1\n@compute @workgroup_size(1)\nfn main() {\n  let x: u32 = undefinedThing;\n}\n',
        },
      ],
    };
    const err = await ctx.pipelines.get(broken, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect((err as ShaderCompileError).kernel).toBe('shaders/test/broken.wgsl');
    expect((err as ShaderCompileError).line).toBe(4);
    expect((err as Error).message).toMatch(/^shaders\/test\/broken\.wgsl:4: /);
  });

  it('an allocation past the adapter limits is an OutOfMemoryError naming the buffer', async () => {
    const ctx = await gpu();
    await expect(ctx.createBuffer('kvPool.k.0', ctx.limits.maxBufferSize + 16, STORAGE)).rejects.toThrow(
      OutOfMemoryError,
    );
    await expect(ctx.createBuffer('kvPool.k.0', ctx.limits.maxBufferSize + 16, STORAGE)).rejects.toThrow(
      /kvPool\.k\.0/,
    );
  });

  it('after device loss every call is a DeviceLostError', async () => {
    const ctx = await createContext(); // its own device: the shared one stays alive
    ctx.destroy();
    await expect(ctx.device.lost).resolves.toBeDefined();
    expect(() => ctx.assertAlive()).toThrow(DeviceLostError);
    await expect(ctx.createBuffer('x', 64, STORAGE)).rejects.toThrow(DeviceLostError);
  });
});

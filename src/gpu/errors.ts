/**
 * Typed errors of the GPU layer. Each says what went wrong and where, so a caller (CLI, demo page,
 * engine) can show a clear message and decide whether to retry, fall back, or give up.
 */
export class WebAttnError extends Error {
  override name = 'WebAttnError';
}

/** No WebGPU at all: no `navigator.gpu` in the browser, or no adapter / no `webgpu` package in Node. */
export class NoWebGpuError extends WebAttnError {
  override name = 'NoWebGpuError';
}

/** A WGSL kernel failed to compile; the message names the kernel file and the line. */
export class ShaderCompileError extends WebAttnError {
  override name = 'ShaderCompileError';
  constructor(
    readonly kernel: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${kernel}:${line}: ${detail}`);
  }
}

/** The device was lost (driver reset, tab backgrounded too long, destroy()). */
export class DeviceLostError extends WebAttnError {
  override name = 'DeviceLostError';
}

/** An allocation the device could not satisfy. */
export class OutOfMemoryError extends WebAttnError {
  override name = 'OutOfMemoryError';
}

/** A shape, size or limit check failed before anything was sent to the GPU. */
export class ShapeError extends WebAttnError {
  override name = 'ShapeError';
}

// Node half of the package test: a Dawn device of our own (the `webgpu` package, the driver from
// VK_ICD_FILENAMES), the kernels-only example on it, and attention() on a context wrapping it.
// Prints one JSON line.
import { create, globals } from 'webgpu';
import { contextFromDevice } from 'webattn';
import { attentionCheck, kernelsCheck, requestOwnDevice } from './checks.mjs';

Object.assign(globalThis, globals); // GPUBufferUsage, GPUMapMode, ... as in a browser
const gpu = create([]); // kept alive until exit: Dawn tears down when this is collected
const { adapter, device } = await requestOwnDevice(gpu);
const ctx = contextFromDevice(device, adapter.info);
const result = {
  adapter: ctx.adapterDescription,
  kernels: await kernelsCheck(device),
  attention: await attentionCheck(ctx),
};
console.log(JSON.stringify(result));
device.destroy();
process.exit(0);

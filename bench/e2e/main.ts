/**
 * The e2e bench page: installs the GPU buffer accounting before any runtime touches WebGPU, then
 * hands the options to runE2e. The runner calls window.runE2e(options) and gets the report back.
 */
import { type E2eOptions, type E2eReport, installGpuHooks, runE2e } from './e2eBench';

export type PageOptions = Omit<E2eOptions, 'onProgress'>;

declare global {
  interface Window {
    runE2e(opts: PageOptions): Promise<E2eReport>;
  }
}

const log = (msg: string) => {
  console.log(`[e2e] ${msg}`);
  document.getElementById('log')!.textContent += `${msg}\n`;
};

installGpuHooks();

window.runE2e = async (opts) => {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter in this browser');
  const info = adapter.info;
  // as GpuContext.adapterDescription writes it
  const name = [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ');
  const features = [...adapter.features].sort();
  log(`adapter ${name}; features ${features.join(' ')}; crossOriginIsolated ${crossOriginIsolated}`);
  return runE2e(name, features, { ...opts, onProgress: log });
};

document.body.dataset.ready = '1';

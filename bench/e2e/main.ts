/**
 * The e2e bench page: installs the GPU buffer accounting before any runtime touches WebGPU, then
 * hands the options to runE2e. The runner calls window.runE2e(options) and gets the report back.
 */
import { type E2eOptions, type E2eReport, installGpuHooks, runE2e } from './e2eBench';
import { installProfileHooks, type PrefillProfile, type ProfileOptions, profilePrefill } from './profile';

export type PageOptions = Omit<E2eOptions, 'onProgress'>;

declare global {
  interface Window {
    runE2e(opts: PageOptions): Promise<E2eReport>;
    profileE2e(opts: Omit<ProfileOptions, 'onProgress'>): Promise<{ adapter: string; profiles: PrefillProfile[] }>;
  }
}

const log = (msg: string) => {
  console.log(`[e2e] ${msg}`);
  document.getElementById('log')!.textContent += `${msg}\n`;
};

installGpuHooks();

async function adapterName(): Promise<{ name: string; features: string[] }> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter in this browser');
  const info = adapter.info;
  // as GpuContext.adapterDescription writes it
  const name = [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ');
  const features = [...adapter.features].sort();
  log(`adapter ${name}; features ${features.join(' ')}; crossOriginIsolated ${crossOriginIsolated}`);
  return { name, features };
}

window.runE2e = async (opts) => {
  const { name, features } = await adapterName();
  return runE2e(name, features, { ...opts, onProgress: log });
};

// Only a profiling page load installs the dispatch recorder (it gives every device timestamp-query).
window.profileE2e = async (opts) => {
  installProfileHooks();
  const { name } = await adapterName();
  return { adapter: name, profiles: await profilePrefill({ ...opts, onProgress: log }) };
};

document.body.dataset.ready = '1';

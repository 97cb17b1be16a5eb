/**
 * The bench page's comparison with onnxruntime-web: bench/peer/peerBench.ts (webattn's paged GQA
 * attention against ORT's WebGPU GroupQueryAttention, outputs checked against each other before
 * timing) in this page. ORT's WebGPU build is loaded from ./ort/ only when this runs.
 *
 * Its own device, without `subgroups`: onnxruntime-web 1.30 picks a subgroup FlashAttention prefill
 * when the device has them, and on SwiftShader that path returns wrong outputs (bench/peer/main.ts);
 * webattn's kernels use no subgroups, so leaving the feature out changes nothing on its side.
 */
import { runPeerBench, type OrtModule, type PeerReport, type PeerRow } from '../bench/peer/peerBench';
import { GpuContext } from '../src/gpu/context';
import { formatTokens, h, $, withClock } from './shell';

export let lastPeerReport: PeerReport | undefined;
let running: AbortController | undefined;

async function openContext(): Promise<GpuContext> {
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter');
  const requiredFeatures = (['shader-f16', 'timestamp-query'] as GPUFeatureName[]).filter((f) =>
    adapter.features.has(f),
  );
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
  const device = await adapter.requestDevice({ label: 'webattn-demo-peer', requiredFeatures, requiredLimits });
  const has = (f: string) => device.features.has(f);
  return new GpuContext(device, adapter.info, {
    shaderF16: has('shader-f16'),
    subgroups: false,
    timestampQuery: has('timestamp-query'),
  });
}

function rowElement(r: PeerRow): HTMLTableRowElement {
  const shape =
    r.phase === 'decode'
      ? `decode, batch ${r.batch}, ${formatTokens(r.contextLength)} context`
      : `prefill, ${formatTokens(r.contextLength)} tokens`;
  return h(
    'tr',
    { 'data-kernel': r.kernel },
    h('th', { scope: 'row' }, shape),
    h('td', {}, r.kernel),
    h('td', { class: 'num' }, r.medianMs.toFixed(2)),
    h('td', { class: 'num' }, r.kernel === 'webattn' ? '' : `${r.vsOrt.toFixed(2)}×`),
    h('td', { class: 'num' }, r.checkRelL2 === null ? '' : r.checkRelL2.toExponential(1)),
  );
}

export async function runPeerPanel(button: HTMLButtonElement, stop: HTMLButtonElement): Promise<void> {
  const status = $('#peer-status');
  const tbody = $('#peer-table tbody');
  tbody.replaceChildren();
  button.disabled = true;
  stop.disabled = false;
  const controller = new AbortController();
  running = controller;
  status.dataset.state = 'running';
  const step = h('span', {}, 'loading onnxruntime-web');
  const clock = h('span', { class: 'clock' });
  status.replaceChildren(step, ' · ', clock);
  let ctx: GpuContext | undefined;
  try {
    lastPeerReport = await withClock(clock, async () => {
      const base = new URL('./ort/', location.href).href;
      const ort = (await import(/* @vite-ignore */ `${base}ort.webgpu.min.mjs`)) as OrtModule;
      ort.env.wasm.wasmPaths = base;
      ort.env.logLevel = 'warning';
      ctx = await openContext();
      return runPeerBench(ctx, ort, {
        quick: true,
        modes: ['ort-static'],
        signal: controller.signal,
        onProgress: (m) => (step.textContent = m),
        onRow: (r) => tbody.append(rowElement(r)),
      });
    });
    status.dataset.state = 'done';
    const skipped = lastPeerReport.skipped.length ? ` · skipped: ${lastPeerReport.skipped.join('; ')}` : '';
    status.replaceChildren(
      h('strong', {}, 'Done'),
      ' in ',
      clock,
      ` · onnxruntime-web ${lastPeerReport.ortVersion}, wall clock, ` +
        `median of ${lastPeerReport.reps} interleaved reps${skipped}`,
    );
    $<HTMLButtonElement>('#bench-download').disabled = false;
  } catch (err) {
    status.dataset.state = controller.signal.aborted ? 'stopped' : 'failed';
    status.replaceChildren(
      h(
        'span',
        { class: controller.signal.aborted ? '' : 'bad' },
        controller.signal.aborted ? 'Stopped.' : `ORT comparison failed: ${(err as Error).message}`,
      ),
    );
  } finally {
    ctx?.destroy();
    running = undefined;
    button.disabled = false;
    stop.disabled = true;
  }
}

export function stopPeerPanel(): void {
  running?.abort();
}

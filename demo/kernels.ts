/**
 * The demo's front page: what this GPU offers, a kernel check against the float64 reference, and a
 * KV-cost calculator (which works without a GPU too).
 */
import type { GpuContext } from '../src/index';
import { KV_DTYPES, type KvDtype } from '../src/gpu/dtype';
import { kvValuesPerTokenPerLayer } from '../src/kv/accounting';
import { CHECK_CASES, TOLERANCE, describeShape, runCheckCase, type CheckCase } from './checkCases';
import { KV_PRESETS, impliedVariant, kvCost, type KvCostInput } from './kvCost';
import { $, formatBytes, formatTokens, h, openGpu, renderAdapterSummary, withClock } from './shell';

// ---------------------------------------------------------------- adapter and limits
const LIMITS: [keyof GPUSupportedLimits, string][] = [
  ['maxComputeWorkgroupStorageSize', 'bytes of workgroup memory (tile sizes)'],
  ['maxComputeInvocationsPerWorkgroup', 'threads per workgroup'],
  ['maxStorageBufferBindingSize', 'bytes one binding may span (KV pages per buffer)'],
  ['maxBufferSize', 'bytes in one buffer'],
  ['maxStorageBuffersPerShaderStage', 'storage buffers per kernel'],
  ['maxComputeWorkgroupsPerDimension', 'workgroups per grid dimension'],
];

function renderLimits(ctx: GpuContext): void {
  const rows = LIMITS.map(([k, what]) => {
    const v = Number(ctx.limits[k]);
    const shown =
      k.endsWith('Size') && v >= 1024 ? `${v.toLocaleString('en-US')} (${formatBytes(v)})` : v.toLocaleString('en-US');
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, h('code', {}, k)),
      h('td', { class: 'num' }, shown),
      h('td', { class: 'muted' }, what),
    );
  });
  $('#limits tbody').replaceChildren(...rows);
}

// ---------------------------------------------------------------- check kernels
function caseRow(c: CheckCase, i: number): HTMLTableRowElement {
  const kernel = c.phase === 'prefill' ? 'flashPrefill' : 'splitKvDecode + merge';
  return h(
    'tr',
    { 'data-case': i, 'data-status': 'pending' },
    h('th', { scope: 'row' }, c.name),
    h('td', {}, h('code', {}, kernel)),
    h('td', {}, c.kvDtype),
    h('td', { class: 'shape' }, describeShape(c)),
    h('td', { class: 'num', 'data-col': 'out' }, '–'),
    h('td', { class: 'num', 'data-col': 'lse' }, '–'),
    h('td', { class: 'num', 'data-col': 'ms' }, '–'),
    h('td', { 'data-col': 'result' }, h('span', { class: 'badge' }, 'waiting')),
  );
}

function setResult(
  row: HTMLElement,
  status: 'running' | 'pass' | 'fail' | 'error',
  text: string,
  title?: string,
): void {
  row.dataset.status = status;
  const badge = h('span', { class: `badge ${status}`, title }, text);
  $('[data-col="result"]', row).replaceChildren(badge);
}

async function checkKernels(ctx: GpuContext, button: HTMLButtonElement): Promise<void> {
  const summary = $('#check-summary');
  const tbody = $('#check-table tbody');
  const rows = CHECK_CASES.map(caseRow);
  tbody.replaceChildren(...rows);
  button.disabled = true;
  summary.dataset.state = 'running';
  let passed = 0;
  const clock = h('span', { class: 'clock' });
  summary.replaceChildren('Running… ', clock);
  try {
    await withClock(clock, async () => {
      for (const [i, c] of CHECK_CASES.entries()) {
        const row = rows[i];
        setResult(row, 'running', 'running…');
        try {
          const r = await runCheckCase(ctx, c);
          const tol = TOLERANCE[c.kvDtype];
          $('[data-col="out"]', row).textContent = r.relL2Out.toExponential(2);
          $('[data-col="lse"]', row).textContent = r.relL2Lse.toExponential(2);
          $('[data-col="ms"]', row).textContent = r.ms.toFixed(0);
          setResult(row, r.pass ? 'pass' : 'fail', r.pass ? 'pass' : 'FAIL', `tolerance ${tol}, seed ${r.seed}`);
          if (r.pass) passed++;
        } catch (err) {
          setResult(row, 'error', 'error', (err as Error).message);
          $('[data-col="out"]', row).textContent = (err as Error).message;
          if (ctx.lostReason !== undefined) break;
        }
      }
    });
  } finally {
    const total = CHECK_CASES.length;
    summary.dataset.state = 'done';
    summary.dataset.passed = String(passed);
    summary.dataset.total = String(total);
    summary.replaceChildren(
      h('strong', { class: passed === total ? 'ok' : 'bad' }, `${passed}/${total} passed`),
      ' in ',
      clock,
    );
    button.disabled = ctx.lostReason !== undefined;
    button.textContent = 'Check again';
  }
}

// ---------------------------------------------------------------- KV-cost calculator
function setupKvCalculator(): void {
  const form = $<HTMLFormElement>('#kv-form');
  const out = $('#kv-result');
  const preset = $<HTMLSelectElement>('#kv-preset');
  const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
  preset.replaceChildren(
    ...Object.entries(KV_PRESETS).map(([id, p]) => h('option', { value: id }, p.label)),
    h('option', { value: 'custom' }, 'Custom'),
  );
  // Every KV dtype the runtime stores (q8 / q4 rows carry their scales: the accounting counts them).
  field('dtype').replaceChildren(...KV_DTYPES.map((d) => h('option', { value: d }, d)));

  const applyPreset = (id: string) => {
    const p = KV_PRESETS[id];
    if (!p) return;
    field('variant').value = p.variant;
    field('numLayers').value = String(p.numLayers);
    field('numHeads').value = String(p.numHeads);
    field('numKvHeads').value = String(p.numKvHeads);
    field('headDim').value = String(p.headDim);
    field('latentDim').value = String(p.latentDim ?? 512);
    field('ropeDim').value = String(p.ropeDim ?? 64);
  };

  const read = (): KvCostInput => {
    const num = (name: string) => Number(field(name).value);
    return {
      variant: field('variant').value as KvCostInput['variant'],
      numLayers: num('numLayers'),
      numHeads: num('numHeads'),
      numKvHeads: num('numKvHeads'),
      headDim: num('headDim'),
      latentDim: num('latentDim'),
      ropeDim: num('ropeDim'),
      dtype: field('dtype').value as KvDtype,
      contextLength: num('contextLength'),
      sequences: num('sequences'),
    };
  };

  const update = () => {
    const x = read();
    const mla = x.variant === 'mla';
    for (const el of form.querySelectorAll<HTMLElement>('[data-for="mla"]')) el.hidden = !mla;
    for (const el of form.querySelectorAll<HTMLElement>('[data-for="kv-heads"]')) el.hidden = mla;
    try {
      const c = kvCost(x);
      // Values per token per layer (a q8 / q4 row adds its f16 scales to the bytes, not to the values).
      const values = kvValuesPerTokenPerLayer({ ...x, headDimQK: x.headDim, headDimV: x.headDim });
      const saving = c.mhaBytesPerToken / c.bytesPerToken;
      const perLayer = mla
        ? `${x.latentDim} + ${x.ropeDim} latent values`
        : `2 × ${x.numKvHeads} KV heads × ${x.headDim}`;
      out.replaceChildren(
        h(
          'dl',
          { class: 'kv-out' },
          h('dt', {}, 'Per token'),
          h(
            'dd',
            { id: 'kv-per-token' },
            h('strong', {}, formatBytes(c.bytesPerToken)),
            ` (${c.bytesPerToken.toLocaleString('en-US')} B: ${perLayer} = ${values} values × ${x.numLayers} layers)`,
          ),
          h('dt', {}, `One sequence of ${formatTokens(x.contextLength)} tokens`),
          h('dd', { id: 'kv-per-seq' }, h('strong', {}, formatBytes(c.bytesPerSequence))),
          h('dt', {}, `${x.sequences} sequence${x.sequences === 1 ? '' : 's'}`),
          h('dd', { id: 'kv-total' }, h('strong', {}, formatBytes(c.totalBytes))),
          h('dt', {}, 'Versus MHA'),
          h(
            'dd',
            {},
            saving > 1.0001
              ? `${saving.toFixed(saving < 10 ? 1 : 0)}× smaller than ${x.numHeads} full K/V heads ` +
                  `(${formatBytes(c.mhaBytesPerToken)} per token)`
              : `this is MHA: every query head has its own K/V head`,
          ),
        ),
      );
      out.dataset.bytes = String(c.totalBytes);
    } catch (err) {
      out.replaceChildren(h('p', { class: 'bad' }, (err as Error).message));
      delete out.dataset.bytes;
    }
  };

  preset.addEventListener('change', () => {
    applyPreset(preset.value);
    update();
  });
  form.addEventListener('input', (e) => {
    const name = (e.target as HTMLInputElement).name;
    if (name === 'preset') return;
    if (name !== 'dtype' && name !== 'contextLength' && name !== 'sequences') {
      preset.value = 'custom';
      if (name === 'numHeads' || name === 'numKvHeads') {
        const x = read();
        if (x.variant !== 'mla' && x.numHeads > 0 && x.numKvHeads > 0)
          field('variant').value = impliedVariant(x.numHeads, x.numKvHeads);
      }
    }
    if (name === 'variant') {
      const x = read();
      if (x.variant === 'mqa') field('numKvHeads').value = '1';
      if (x.variant === 'mha') field('numKvHeads').value = String(x.numHeads);
    }
    update();
  });
  form.addEventListener('submit', (e) => e.preventDefault());

  preset.value = 'llama-3-8b';
  applyPreset(preset.value);
  field('dtype').value = 'f16';
  field('contextLength').value = '8192';
  field('sequences').value = '1';
  update();
}

// ---------------------------------------------------------------- start
async function start(): Promise<void> {
  setupKvCalculator(); // needs no GPU: works even when the GPU part cannot
  $('#isolation').textContent = crossOriginIsolated
    ? 'cross-origin isolated (threaded wasm available)'
    : 'not cross-origin isolated';
  const gpu = await openGpu();
  if (!gpu.ok) {
    $('#adapter').replaceChildren(h('p', { class: 'muted' }, 'No GPU: see the message above.'));
    $('#limits-box').hidden = true;
    return;
  }
  const ctx = gpu.ctx;
  renderAdapterSummary($('#adapter'), ctx);
  renderLimits(ctx);
  const button = $<HTMLButtonElement>('#check-run');
  button.addEventListener('click', () => void checkKernels(ctx, button));
}

void start();

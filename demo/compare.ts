/**
 * The variants page: the same prompt on the four shipped tiny models (MHA, GQA, MQA, MLA), one
 * after another, each in a fresh worker engine, with KV bytes per token, the most pages it held and
 * its prefill / decode speed; and the KV bill of any config.json per variant, at every KV dtype,
 * less what sliding-window layers free, plus its weights at every format, against a GPU's memory
 * (works without a GPU).
 */
import { createWorkerEngine, type WorkerEngine } from '../src/engine/workerEngine';
import type { StepInfo } from '../src/engine/types';
import type { KvDtype } from '../src/gpu/dtype';
import {
  SHIPPED_MODELS,
  adviceFor,
  classifyError,
  describeModel,
  forgetCached,
  formatRate,
  shippedModelUrl,
} from './engineClient';
import { LOAD_DTYPES } from '../src/model/weightFormats';
import type { LoadDtype } from '../src/model/weights';
import {
  KV_PRESETS,
  billKvDtypes,
  bytesPerTokenByDtype,
  dimsFromConfig,
  variantBills,
  weightColumns,
  windowSaving,
  type ConfigDims,
} from './kvCost';
import { drawKvGrid, kvTotals } from './kvGrid';
import { $, formatBytes, formatTokens, h, openGpu } from './shell';

// ---------------------------------------------------------------- the race
interface Column {
  el: HTMLElement;
  set(name: string, value: string): void;
  text: HTMLElement;
  grid: HTMLCanvasElement;
}

function column(m: (typeof SHIPPED_MODELS)[number]): Column {
  const dd = (name: string) => h('dd', { 'data-field': name }, '–');
  const text = h('p', { class: 'race-text' });
  const grid = h('canvas', { class: 'race-kv', width: 200, height: 40, role: 'img', 'aria-label': `${m.id} KV pages` });
  const el = h(
    'article',
    { class: 'race-col', 'data-model': m.id, 'data-state': 'waiting' },
    h('h3', {}, m.variant.toUpperCase(), ' ', h('small', { class: 'muted' }, m.id)),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'KV / token'),
      dd('kvPerToken'),
      h('dt', {}, 'Pages used'),
      dd('pages'),
      h('dt', {}, 'KV held'),
      dd('kvBytes'),
      h('dt', {}, 'Prefill'),
      dd('prefill'),
      h('dt', {}, 'Decode'),
      dd('decode'),
    ),
    grid,
    text,
  );
  return {
    el,
    text,
    grid,
    set: (name, value) => {
      $(`[data-field="${name}"]`, el).textContent = value;
    },
  };
}

let raceAbort: AbortController | undefined;

async function runRace(): Promise<void> {
  const form = $<HTMLFormElement>('#race-form');
  const prompt = $<HTMLInputElement>('#race-prompt').value.trim() || 'And God said';
  const maxTokens = Math.max(
    1,
    Math.min(512, Number((form.elements.namedItem('maxTokens') as HTMLInputElement).value) || 32),
  );
  const status = $('#race-status');
  const run = $<HTMLButtonElement>('#race-run');
  const stop = $<HTMLButtonElement>('#race-stop');
  const controller = new AbortController();
  raceAbort = controller;
  run.disabled = true;
  stop.disabled = false;
  status.dataset.state = 'running';
  const cols = SHIPPED_MODELS.map(column);
  $('#race-grid').replaceChildren(...cols.map((c) => c.el));
  let done = 0;
  for (const [i, m] of SHIPPED_MODELS.entries()) {
    if (controller.signal.aborted) break;
    const col = cols[i];
    col.el.dataset.state = 'loading';
    status.textContent = `Loading ${m.id} (${i + 1} of ${SHIPPED_MODELS.length})…`;
    let engine: WorkerEngine | undefined;
    try {
      await forgetCached(shippedModelUrl(m.id)).catch(() => undefined); // no stale copy of a retrained model
      engine = await createWorkerEngine({ model: shippedModelUrl(m.id), engine: { maxSeqs: 1 } });
      const info = await describeModel({ kind: 'shipped', id: m.id }, 'f16');
      col.set(
        'kvPerToken',
        `${formatBytes(info.kvBytesPerToken)} (${
          info.latent
            ? `one ${info.latent.dim} + ${info.latent.ropeDim} latent row`
            : `${info.numKvHeads} KV head${info.numKvHeads === 1 ? '' : 's'} of ${info.numHeads}`
        })`,
      );
      col.el.dataset.state = 'running';
      status.textContent = `Running ${m.id}…`;
      const totals = { prefillTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0, peakPages: 0, peakBytes: 0 };
      let drawing = false;
      const e = engine;
      const snap = async () => {
        const s = await e.kvSnapshot();
        const t = kvTotals(s);
        if (t.usedPages >= totals.peakPages) {
          totals.peakPages = t.usedPages;
          totals.peakBytes = t.usedBytes;
          drawKvGrid(col.grid, s);
        }
        col.set('pages', `${totals.peakPages} of ${s.numPages}`);
        col.set('kvBytes', formatBytes(totals.peakBytes));
      };
      engine.onStep = (s: StepInfo) => {
        if (s.prefillTokens > 0) {
          totals.prefillTokens += s.prefillTokens;
          totals.prefillMs += s.ms;
        } else {
          totals.decodeTokens += s.decodeTokens;
          totals.decodeMs += s.ms;
        }
        col.set('prefill', formatRate(totals.prefillTokens, totals.prefillMs));
        col.set('decode', formatRate(totals.decodeTokens, totals.decodeMs));
        if (!drawing) {
          drawing = true;
          void snap()
            .catch(() => undefined)
            .finally(() => (drawing = false));
        }
      };
      let text = '';
      for await (const c of engine.generate(prompt, {
        maxTokens,
        temperature: 0,
        signal: controller.signal,
        label: m.id,
      })) {
        text += c.text;
        col.text.textContent = text;
      }
      col.el.dataset.state = 'done';
      col.el.dataset.pages = String(totals.peakPages);
      done++;
    } catch (err) {
      const { kind, message } = classifyError(err);
      col.el.dataset.state = kind === 'abort' ? 'stopped' : 'failed';
      if (kind !== 'abort')
        col.text.replaceChildren(
          h('span', { class: 'bad' }, message),
          h('br'),
          h('span', { class: 'small muted' }, adviceFor(kind)),
        );
    } finally {
      engine?.dispose();
    }
  }
  raceAbort = undefined;
  run.disabled = document.body.dataset.gpu !== 'ready';
  stop.disabled = true;
  status.dataset.state = controller.signal.aborted ? 'stopped' : 'done';
  status.textContent = controller.signal.aborted
    ? `Stopped after ${done} models.`
    : `Done: ${done} of ${SHIPPED_MODELS.length} models ran.`;
}

// ---------------------------------------------------------------- the bill
const PRESET_PARAMS: Record<string, number> = {
  'llama-2-7b': 6.74e9,
  'mistral-7b': 7.24e9,
  'llama-3-8b': 8.03e9,
  'qwen2.5-0.5b': 0.49e9,
  'smollm2-360m': 0.36e9,
  'gemma-2b': 2.51e9,
  'deepseek-v3': 671e9,
};

let dims: ConfigDims | undefined;

function setupBill(): void {
  const form = $<HTMLFormElement>('#bill-form');
  const preset = $<HTMLSelectElement>('#bill-preset');
  const source = $('#bill-source');
  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value;
  preset.replaceChildren(
    ...Object.entries(KV_PRESETS).map(([id, p]) => h('option', { value: id }, p.label)),
    h('option', { value: 'config' }, 'From the config.json below'),
  );
  // Every KV dtype the runtime stores and every weight format: one list each (src/gpu/dtype.ts, weightFormats.ts).
  const kvDtypes = billKvDtypes();
  $<HTMLSelectElement>('#bill-kv-dtype').replaceChildren(
    ...kvDtypes.map((d) => h('option', { value: d, selected: d === 'f16' }, d)),
  );
  const weightFormats = [...LOAD_DTYPES].reverse(); // q4 first
  $<HTMLSelectElement>('#bill-weight-dtype').replaceChildren(
    ...weightFormats.map((d) => h('option', { value: d, selected: d === 'f16' }, d)),
  );
  $('#bill-table thead').replaceChildren(
    h(
      'tr',
      {},
      h('th', { scope: 'col' }, 'Variant'),
      h('th', { scope: 'col' }, 'KV per token per layer'),
      h('th', { scope: 'col', class: 'num' }, 'Per token'),
      ...kvDtypes.map((d) => h('th', { scope: 'col', class: 'num', 'data-kv-dtype': d }, `Cache ${d}`)),
      h('th', { scope: 'col', class: 'num' }, '+ weights'),
      h('th', { scope: 'col' }, 'Of the GPU'),
    ),
  );
  $('#bill-weights thead').replaceChildren(
    h(
      'tr',
      {},
      h('th', { scope: 'col' }, 'Weights'),
      ...LOAD_DTYPES.map((d) => h('th', { scope: 'col', class: 'num', 'data-weight-dtype': d }, d)),
    ),
  );
  const fromPreset = (id: string) => {
    const p = KV_PRESETS[id];
    dims = {
      name: p.label,
      variant: p.variant,
      numLayers: p.numLayers,
      numHeads: p.numHeads,
      numKvHeads: p.numKvHeads,
      headDim: p.headDim,
      latentDim: p.latentDim,
      ropeDim: p.ropeDim,
      parameters: PRESET_PARAMS[id],
    };
    source.textContent = `${p.label}: dims from its config.json on the Hugging Face hub.`;
  };
  const fromText = () => {
    const text = $<HTMLTextAreaElement>('#bill-config').value.trim();
    if (!text) return;
    try {
      dims = dimsFromConfig(JSON.parse(text));
      preset.value = 'config';
      source.replaceChildren(
        `${dims.name}: ${dims.variant.toUpperCase()}, ${dims.numLayers} layers, ${dims.numHeads} query heads, ` +
          `${dims.numKvHeads} KV heads, head dim ${dims.headDim}`,
        dims.maxContext ? `, trained context ${formatTokens(dims.maxContext)}` : '',
        '.',
      );
    } catch (err) {
      dims = undefined;
      source.replaceChildren(h('span', { class: 'bad' }, `Cannot read that config: ${(err as Error).message}`));
    }
  };
  const update = () => {
    const tbody = $('#bill-table tbody');
    if (!dims) {
      tbody.replaceChildren();
      return;
    }
    const ctxLen = Math.max(1, Math.round(Number(value('contextLength')) || 1));
    const seqs = Math.max(1, Math.round(Number(value('sequences')) || 1));
    const gpuBytes = Math.max(0.5, Number(value('gpuGb')) || 24) * 1e9;
    const kvDtype = value('dtype') as KvDtype;
    const weightDtype = value('weightDtype') as LoadDtype;
    const columns = weightColumns(dims);
    const weights = columns.find((c) => c.dtype === weightDtype)?.bytes ?? 0;
    const approx = columns.some((c) => c.approx) ? '≈ ' : '';
    $('#bill-weights tbody').replaceChildren(
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, dims.name),
        ...LOAD_DTYPES.map((d) => {
          const c = columns.find((x) => x.dtype === d);
          const text = c ? `${approx}${formatBytes(c.bytes)}` : '–';
          const attrs = {
            class: 'num',
            'data-weight-dtype': d,
            'data-bytes': c?.bytes ?? '',
            'data-approx': !!c?.approx,
          };
          return h('td', attrs, d === weightDtype ? h('strong', {}, text) : text);
        }),
      ),
    );
    // Sliding-window layers hold only the pages their window reads: the same page-count ratio for every row.
    const saving = windowSaving(dims.spec, ctxLen);
    const ratio = saving?.ratio ?? 1;
    const bills = variantBills(dims, kvDtype, ctxLen, seqs);
    const windowNote = $('#bill-window');
    windowNote.hidden = !saving;
    if (saving) {
      const actual = bills.find((b) => b.actual) ?? bills[0];
      const all = actual.bytesPerToken * ctxLen;
      windowNote.dataset.allPagesBytes = String(saving.allPagesBytes);
      windowNote.dataset.scheduledBytes = String(saving.scheduledBytes);
      windowNote.replaceChildren(
        h('strong', {}, 'Sliding windows free pages: '),
        `${saving.slidingLayers} of ${saving.numLayers} layers attend only to their last ${saving.window} tokens, ` +
          `so one sequence of ${formatTokens(ctxLen)} tokens holds ${formatBytes(Math.round(all * ratio))} of ` +
          `${kvDtype} KV instead of ${formatBytes(all)} (${ratio.toFixed(3)} of it: ${saving.slidingPagesHeld} ` +
          `pages per sliding layer, ${saving.fullPagesHeld} per full layer, pages of 16). The cache columns count ` +
          'the pages freed.',
      );
    }
    tbody.replaceChildren(
      ...bills.map((b) => {
        const cacheBytes = Math.round(b.cacheBytes * ratio);
        const perToken = bytesPerTokenByDtype(b.kvSpec);
        const total = cacheBytes + weights;
        const share = total / gpuBytes;
        const fits = share <= 1;
        return h(
          'tr',
          {
            'data-variant': b.variant,
            'data-actual': b.actual,
            'data-bytes': cacheBytes,
            'data-all-pages-bytes': b.cacheBytes,
            class: b.actual ? 'actual' : '',
          },
          h(
            'th',
            { scope: 'row' },
            b.variant.toUpperCase(),
            b.actual ? h('span', { class: 'badge' }, 'this model') : '',
          ),
          h('td', {}, b.shape),
          h('td', { class: 'num' }, formatBytes(b.bytesPerToken)),
          ...kvDtypes.map((d) => {
            const per = perToken[d];
            const bytes = per === undefined ? null : Math.round(per * ctxLen * seqs * ratio);
            const text = bytes === null ? '–' : formatBytes(bytes);
            return h(
              'td',
              { class: 'num', 'data-kv-dtype': d, 'data-bytes': bytes ?? '' },
              d === kvDtype ? h('strong', {}, text) : text,
            );
          }),
          h('td', { class: 'num' }, weights ? formatBytes(total) : '–'),
          h(
            'td',
            { class: 'bar-cell' },
            h('span', {
              class: `bar ${fits ? 'fits' : 'over'}`,
              style: `width:${Math.min(100, share * 100).toFixed(1)}%`,
              'aria-hidden': 'true',
            }),
            h(
              'span',
              { class: fits ? 'ok' : 'bad' },
              fits ? `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%` : `${share.toFixed(1)}× too big`,
            ),
          ),
        );
      }),
    );
  };
  preset.addEventListener('change', () => {
    if (preset.value === 'config') fromText();
    else fromPreset(preset.value);
    update();
  });
  $<HTMLTextAreaElement>('#bill-config').placeholder =
    '{"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096, ...}';
  $('#bill-config').addEventListener('input', () => {
    fromText();
    update();
  });
  form.addEventListener('input', (e) => {
    if ((e.target as HTMLElement).id !== 'bill-config' && (e.target as HTMLElement).id !== 'bill-preset') update();
  });
  form.addEventListener('submit', (e) => e.preventDefault());
  const fetchConfig = async () => {
    const repo = $<HTMLInputElement>('#bill-repo')
      .value.trim()
      .replace(/^https:\/\/huggingface\.co\//, '');
    if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) {
      source.replaceChildren(h('span', { class: 'bad' }, 'Type a repo id such as Qwen/Qwen2.5-0.5B-Instruct.'));
      return;
    }
    source.textContent = `Fetching ${repo}/config.json…`;
    try {
      const res = await fetch(`https://huggingface.co/${repo}/resolve/main/config.json`);
      if (!res.ok)
        throw new Error(
          res.status === 401 || res.status === 403
            ? `HTTP ${res.status}: the repo is gated or private; paste its config.json instead`
            : `HTTP ${res.status}`,
        );
      $<HTMLTextAreaElement>('#bill-config').value = JSON.stringify(await res.json(), null, 1);
      fromText();
      if (dims) dims.name = repo;
      update();
    } catch (err) {
      source.replaceChildren(
        h(
          'span',
          { class: 'bad' },
          `Could not fetch ${repo}/config.json (${(err as Error).message}). Paste the file's text instead.`,
        ),
      );
    }
  };
  $('#bill-fetch').addEventListener('click', () => void fetchConfig());
  $('#bill-repo').addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') {
      e.preventDefault();
      void fetchConfig();
    }
  });
  // The example the issue asks for: a 7B MHA model at 128K context against a 24 GB GPU.
  preset.value = 'llama-2-7b';
  fromPreset('llama-2-7b');
  update();
}

// ---------------------------------------------------------------- start
async function start(): Promise<void> {
  setupBill();
  $('#race-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void runRace();
  });
  $('#race-stop').addEventListener('click', () => raceAbort?.abort());
  $('#race-grid').replaceChildren(...SHIPPED_MODELS.map((m) => column(m).el));
  const gpu = await openGpu({ without: 'The KV-bill calculator below still works.' });
  if (!gpu.ok) $('#race-status').textContent = 'Running the models needs WebGPU: see the message above.';
}

void start();

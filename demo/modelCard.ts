/**
 * The chat page's model card views: what the adapter can bind, the loaded model's facts, and how much
 * the browser keeps of downloaded models.
 */
import type { GpuContext } from '../src/gpu/context';
import { cacheUsage, type ModelInfo } from './engineClient';
import type { LoadOptions } from './modelPicker';
import { weightCost } from './precision';
import { formatTypeCounts } from '../src/model/weightFormats';
import { $, formatBytes, h, renderAdapterSummary } from './shell';

/** The adapter summary, plus notes on its binding limit and on f16 without shader-f16. */
export function renderAdapter(el: HTMLElement, ctx: GpuContext): void {
  const binding = ctx.limits.maxStorageBufferBindingSize;
  const note = (cls: string, id: string | undefined, text: string) =>
    h('p', { class: cls, ...(id ? { id } : {}) }, text);
  renderAdapterSummary(el, ctx);
  el.append(
    note(
      'small muted',
      undefined,
      `One buffer binding may span ${formatBytes(binding)} (maxStorageBufferBindingSize).`,
    ),
  );
  if (!ctx.features.shaderF16) {
    const text =
      'No shader-f16: f16 weights and KV are unpacked from 32-bit words (works, a little slower). ' +
      'Choose f32 under "Precision and memory" if a load fails.';
    el.append(note('small', 'f16-note', text));
  }
  if (binding < 256 * 1024 * 1024) {
    const text =
      `This GPU binds at most ${formatBytes(binding)} at once: a larger weight (the embedding table of most ` +
      'models above ~100M parameters in f16) is split by rows into several buffers, which costs nothing at ' +
      'decode; q8 and q4 weights halve and quarter most tensors (the embedding stays q8).';
    el.append(note('small warn', 'binding-note', text));
  }
}

/** The facts under the model card: attention, layers, weights, KV per token, chat template. */
export function renderModelFacts(el: HTMLElement, info: ModelInfo, opts: LoadOptions): void {
  const kvHeads = info.latent
    ? `one ${info.latent.dim} + ${info.latent.ropeDim} latent KV row`
    : `${info.numKvHeads} KV head${info.numKvHeads === 1 ? '' : 's'}`;
  const millions = (info.parameters / 1e6).toFixed(info.parameters < 1e7 ? 2 : 0);
  const free = { maxStorageBufferBindingSize: Infinity, maxBufferSize: Infinity };
  const cost = weightCost(info.plan, opts.weightDtype, free);
  const gguf = info.plan.gguf;
  const format = gguf ? `as stored (GGUF ${formatTypeCounts(gguf.types)})` : opts.weightDtype;
  const context = opts.maxContext ?? Math.min(info.maxContext ?? 4096, 4096);
  const kv = `${opts.kvDtype} · ${formatBytes(info.kvBytesPerToken)} per token · up to ${context} tokens per sequence`;
  const fact = (term: string, value: string, id?: string) => [h('dt', {}, term), h('dd', id ? { id } : {}, value)];
  el.hidden = false;
  el.replaceChildren(
    h(
      'dl',
      { class: 'facts' },
      ...fact(
        'Attention',
        `${info.attention.toUpperCase()} · ${info.numHeads} query heads, ${kvHeads}`,
        'model-attention',
      ),
      ...fact('Layers', String(info.numLayers)),
      ...fact('Weights', `${millions}M parameters · ${format} · ${formatBytes(cost.bytes)}`, 'model-weights'),
      ...fact('KV', kv),
      ...fact('Chat template', info.hasChatTemplate ? 'yes' : 'none: replies continue the text'),
    ),
  );
}

/** "Downloaded files kept: 14 · site storage 12 MiB of 10 GiB." */
export async function showCacheUsage(): Promise<void> {
  try {
    const u = await cacheUsage();
    const quota = u.quota ? ` of ${formatBytes(u.quota)}` : '';
    const storage = u.usage !== undefined ? ` · site storage ${formatBytes(u.usage)}${quota}` : '';
    $('#cache-usage').textContent = `Downloaded files kept: ${u.files}${storage}.`;
  } catch {
    $('#cache-line').hidden = true; // no Cache API (an insecure origin): nothing is kept anyway
  }
}

/**
 * The chat page's model card form: which model (a shipped tiny model, a hub repo id, a GGUF file in
 * a repo, a folder or .gguf URL, or local files picked or dropped on the page: a folder, or one
 * .gguf) and how to load it ("Precision and memory": the weight format and KV dtype, each priced
 * for the chosen model before download by precision.ts, and the context).
 */
import { KV_DTYPES, type KvDtype } from '../src/gpu/dtype';
import { isGgufFileName } from '../src/sources/modelSource';
import { DEFAULT_MODEL, SHIPPED_MODELS, type ModelChoice } from './engineClient';
import {
  type AdapterLimits,
  kvChoices,
  kvOptionLabel,
  type ModelPlan,
  WEIGHT_CHOICES,
  type WeightChoice,
  weightChoices,
  weightCost,
  weightNote,
  weightOptionLabel,
} from './precision';
import { $, formatBytes, h } from './shell';

export interface LoadOptions {
  /** A load format, or 'stored': a GGUF file's own blocks (the engine's default for it). */
  weightDtype: WeightChoice;
  kvDtype: KvDtype;
  /** undefined: the model's max_position_embeddings, at most 4096 (the engine's default). */
  maxContext: number | undefined;
}

/** What the engine is given as weightDtype: undefined for "as stored" (a GGUF keeps its blocks). */
export function engineWeightDtype(choice: WeightChoice) {
  return choice === 'stored' ? undefined : choice;
}

export const field = <T extends HTMLElement = HTMLInputElement>(form: HTMLFormElement, name: string) =>
  form.elements.namedItem(name) as unknown as T;

export function readLoadOptions(form: HTMLFormElement): LoadOptions {
  const maxContext = field(form, 'maxContext').value;
  return {
    weightDtype: field<HTMLSelectElement>(form, 'weightDtype').value as WeightChoice,
    kvDtype: field<HTMLSelectElement>(form, 'kvDtype').value as KvDtype,
    maxContext: maxContext === '' ? undefined : Math.max(64, Math.round(Number(maxContext) || 1024)),
  };
}

/** Files of a dropped folder, recursively (the entries API: only way to read a dropped folder). */
async function readEntry(entry: FileSystemEntry): Promise<File[]> {
  if (entry.isFile) return [await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej))];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    all.push(...batch);
  }
  return (await Promise.all(all.map(readEntry))).flat();
}

/**
 * Fills the precision menu for `plan` (null: no model read yet, formats without bytes): each weight
 * format with its GPU bytes and whether it fits `limits`, each KV dtype with its bytes per token.
 * The selection is kept where the new menu still offers it (f16 weights, f16 KV by default; a GGUF
 * file offers only "as stored", and the menu is then disabled).
 */
export function renderPrecisionMenu(form: HTMLFormElement, plan: ModelPlan | null, limits?: AdapterLimits): void {
  const weights = field<HTMLSelectElement>(form, 'weightDtype');
  const kv = field<HTMLSelectElement>(form, 'kvDtype');
  const keepWeights = weights.value;
  const keepKv = kv.value || 'f16';
  const free = { maxStorageBufferBindingSize: Infinity, maxBufferSize: Infinity };
  const choices = plan ? weightChoices(plan) : [...WEIGHT_CHOICES];
  weights.replaceChildren(
    ...choices.map((c) => {
      const cost = plan ? weightCost(plan, c, limits ?? free) : null;
      const label = cost ? weightOptionLabel(cost) : c;
      return h(
        'option',
        { value: c, 'data-bytes': cost?.bytes ?? '', 'data-fits': cost ? String(cost.problem === null) : '' },
        label,
      );
    }),
  );
  weights.value = choices.includes(keepWeights as WeightChoice)
    ? keepWeights
    : choices.includes('f16')
      ? 'f16'
      : choices[0];
  weights.disabled = choices.length === 1;
  kv.replaceChildren(
    ...kvChoices(plan?.spec ?? null).map((c) =>
      h(
        'option',
        {
          value: c.dtype,
          'data-bytes-per-token': c.bytesPerToken ?? '',
          disabled: c.problem !== null, // e.g. q4 on d 8 heads (kvDtypeProblem)
          title: c.problem ?? undefined,
        },
        kvOptionLabel(c),
      ),
    ),
  );
  const refused = kvChoices(plan?.spec ?? null).find((c) => c.dtype === keepKv)?.problem;
  kv.value = (KV_DTYPES as readonly string[]).includes(keepKv) && !refused ? keepKv : 'f16';
  renderPrecisionNote(form, plan, limits);
}

/** The line under the menu: the chosen format's bytes, or why it does not fit (with the numbers). */
export function renderPrecisionNote(form: HTMLFormElement, plan: ModelPlan | null, limits?: AdapterLimits): void {
  const note = $('#precision-note');
  if (!plan) {
    note.replaceChildren();
    return;
  }
  const choice = field<HTMLSelectElement>(form, 'weightDtype').value as WeightChoice;
  const free = { maxStorageBufferBindingSize: Infinity, maxBufferSize: Infinity };
  const cost = weightCost(plan, choice, limits ?? free);
  note.dataset.fits = String(cost.problem === null);
  note.dataset.bytes = String(cost.bytes);
  note.replaceChildren(
    weightNote(plan, cost),
    cost.problem ? h('span', { class: 'bad' }, `. Will not fit: ${cost.problem}.`) : '.',
  );
}

/** The form `#model-form` and the local files picked in it. */
export class ModelPicker {
  readonly form = $<HTMLFormElement>('#model-form');
  private pickedFiles: File[] = [];
  private pickedName = '';
  /** Called when the model the form names may have changed (kind, shipped model, repo id, files). */
  onChoiceChange: (() => void) | null = null;

  /** Fills the shipped-model list, wires the kind switch, the file inputs and drop, and ?model=. */
  constructor() {
    const form = this.form;
    const select = $<HTMLSelectElement>('#shipped-model');
    select.replaceChildren(
      ...SHIPPED_MODELS.map((m) => h('option', { value: m.id, selected: m.id === DEFAULT_MODEL }, m.label)),
    );
    for (const r of form.querySelectorAll<HTMLInputElement>('input[name="kind"]')) {
      r.addEventListener('change', () => {
        this.showKind();
        this.onChoiceChange?.();
      });
    }
    select.addEventListener('change', () => this.onChoiceChange?.());
    $('#hub-id').addEventListener('change', () => this.onChoiceChange?.());
    // A folder's name; one file picked alone (a .gguf) goes by its own name.
    const folderName = (files: File[]) =>
      files[0]?.webkitRelativePath?.split('/')[0] || (files.length === 1 ? files[0].name : 'picked files');
    for (const id of ['#folder-input', '#files-input']) {
      const input = $<HTMLInputElement>(id);
      input.addEventListener('change', () => this.pick([...(input.files ?? [])], folderName([...(input.files ?? [])])));
    }
    // Drop anywhere on the page: a folder (through the entries API) or loose files.
    const zone = $('#drop-zone');
    document.addEventListener('dragover', (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
    document.addEventListener('dragleave', (e) => {
      if (e.relatedTarget === null) zone.classList.remove('over');
    });
    document.addEventListener('drop', async (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const items = [...(e.dataTransfer?.items ?? [])];
      const entries = items.map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => !!x);
      const files = entries.length
        ? (await Promise.all(entries.map(readEntry))).flat()
        : [...(e.dataTransfer?.files ?? [])];
      this.pick(files, entries.length === 1 && entries[0].isDirectory ? entries[0].name : 'dropped files');
    });
    // A link may name a model: index.html?model=HuggingFaceTB/SmolLM2-135M-Instruct
    const wanted = new URLSearchParams(location.search).get('model');
    if (wanted && SHIPPED_MODELS.some((m) => m.id === wanted)) select.value = wanted;
    else if (wanted) {
      this.kindInput('hub').checked = true;
      $<HTMLInputElement>('#hub-id').value = wanted;
      this.showKind();
    }
  }

  loadOptions(): LoadOptions {
    return readLoadOptions(this.form);
  }

  /** The model the form names, or what is wrong with it. */
  choice(): ModelChoice | string {
    const checked = this.form.querySelector<HTMLInputElement>('input[name="kind"]:checked');
    const kind = (checked?.value ?? 'shipped') as ModelChoice['kind'];
    if (kind === 'shipped') return { kind, id: $<HTMLSelectElement>('#shipped-model').value };
    if (kind === 'hub') {
      const typed = $<HTMLInputElement>('#hub-id').value.trim();
      // A folder or .gguf URL (any host but the hub's, or a path on this one)
      if (/^(https?:\/\/(?!huggingface\.co\/)|\.{0,2}\/)/.test(typed)) return { kind: 'url', url: typed };
      // A hub file URL (huggingface.co/org/name/resolve/main/x.gguf, or .../blob/main/...): the repo and file.
      const repoId = typed
        .replace(/^https:\/\/huggingface\.co\//, '')
        .replace(/^([\w.-]+\/[\w.-]+)\/(?:resolve|blob)\/main\//, '$1/')
        .replace(/\/+$/, '');
      if (!/^[\w.-]+\/[\w.-]+(\/[\w./-]+\.gguf)?$/i.test(repoId)) {
        return (
          'Type a Hugging Face repo id such as HuggingFaceTB/SmolLM2-135M-Instruct, a GGUF file in a repo ' +
          '(org/name/file.gguf), or the URL of a model folder or .gguf file.'
        );
      }
      return { kind, repoId };
    }
    const files = this.pickedFiles;
    if (!files.length) {
      return 'Choose or drop a model folder first (config.json, model.safetensors, tokenizer.json), or one .gguf file.';
    }
    const ggufs = files.filter((f) => isGgufFileName(f.name)).length;
    if (!files.some((f) => f.name === 'config.json') && ggufs !== 1) {
      return ggufs > 1
        ? `${ggufs} .gguf files were picked: pick one (a GGUF file holds the whole model).`
        : `No config.json and no .gguf file among the ${files.length} files picked.`;
    }
    return { kind: 'files', files, name: this.pickedName || 'local folder' };
  }

  private kindInput(kind: string): HTMLInputElement {
    return this.form.querySelector<HTMLInputElement>(`input[name="kind"][value="${kind}"]`)!;
  }

  private showKind(): void {
    const kind = this.form.querySelector<HTMLInputElement>('input[name="kind"]:checked')?.value;
    for (const el of this.form.querySelectorAll<HTMLElement>('[data-kind]')) el.hidden = el.dataset.kind !== kind;
  }

  private pick(files: File[], name: string): void {
    const picked = files.filter((f) => /\.(json|safetensors|gguf)$/i.test(f.name));
    this.pickedFiles = picked;
    this.pickedName = name;
    const total = picked.reduce((s, f) => s + f.size, 0);
    const names = `${picked
      .map((f) => f.name)
      .slice(0, 6)
      .join(', ')}${picked.length > 6 ? ', …' : ''}`;
    $('#picked').textContent = picked.length
      ? `${name}: ${picked.length} files, ${formatBytes(total)} (${names})`
      : 'No .json, .safetensors or .gguf files in what was picked.';
    this.kindInput('files').checked = true;
    this.showKind();
    this.onChoiceChange?.();
  }
}

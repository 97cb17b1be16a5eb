/**
 * The chat page's model card form: which model (a shipped tiny model, a hub repo id or folder URL,
 * or a local folder picked or dropped on the page) and how to load it (weight and KV dtypes, context).
 */
import { DEFAULT_MODEL, SHIPPED_MODELS, type ModelChoice } from './engineClient';
import { $, formatBytes, h } from './shell';

export interface LoadOptions {
  weightDtype: 'f16' | 'f32';
  kvDtype: 'f16' | 'f32';
  /** undefined: the model's max_position_embeddings, at most 4096 (the engine's default). */
  maxContext: number | undefined;
}

export const field = <T extends HTMLElement = HTMLInputElement>(form: HTMLFormElement, name: string) =>
  form.elements.namedItem(name) as unknown as T;

export function readLoadOptions(form: HTMLFormElement): LoadOptions {
  const maxContext = field(form, 'maxContext').value;
  return {
    weightDtype: field<HTMLSelectElement>(form, 'weightDtype').value as 'f16' | 'f32',
    kvDtype: field<HTMLSelectElement>(form, 'kvDtype').value as 'f16' | 'f32',
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

/** The form `#model-form` and the local files picked in it. */
export class ModelPicker {
  readonly form = $<HTMLFormElement>('#model-form');
  private pickedFiles: File[] = [];
  private pickedName = '';

  /** Fills the shipped-model list, wires the kind switch, the file inputs and drop, and ?model=. */
  constructor() {
    const form = this.form;
    const select = $<HTMLSelectElement>('#shipped-model');
    select.replaceChildren(
      ...SHIPPED_MODELS.map((m) => h('option', { value: m.id, selected: m.id === DEFAULT_MODEL }, m.label)),
    );
    for (const r of form.querySelectorAll<HTMLInputElement>('input[name="kind"]')) {
      r.addEventListener('change', () => this.showKind());
    }
    const folderName = (files: File[]) => files[0]?.webkitRelativePath?.split('/')[0] || 'picked files';
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
      // A folder URL (any host but the hub's, or a path on this one)
      if (/^(https?:\/\/(?!huggingface\.co\/)|\.{0,2}\/)/.test(typed)) return { kind: 'url', url: typed };
      const repoId = typed.replace(/^https:\/\/huggingface\.co\//, '').replace(/\/+$/, '');
      if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) {
        return 'Type a Hugging Face repo id such as HuggingFaceTB/SmolLM2-135M-Instruct, or the URL of a model folder.';
      }
      return { kind, repoId };
    }
    const files = this.pickedFiles;
    if (!files.length) return 'Choose or drop a model folder first (config.json, model.safetensors, tokenizer.json).';
    if (!files.some((f) => f.name === 'config.json')) return `No config.json among the ${files.length} files picked.`;
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
    const picked = files.filter((f) => /\.(json|safetensors)$/.test(f.name));
    this.pickedFiles = picked;
    this.pickedName = name;
    const total = picked.reduce((s, f) => s + f.size, 0);
    const names = `${picked
      .map((f) => f.name)
      .slice(0, 6)
      .join(', ')}${picked.length > 6 ? ', …' : ''}`;
    $('#picked').textContent = picked.length
      ? `${name}: ${picked.length} files, ${formatBytes(total)} (${names})`
      : 'No .json or .safetensors files in what was picked.';
    this.kindInput('files').checked = true;
    this.showKind();
  }
}

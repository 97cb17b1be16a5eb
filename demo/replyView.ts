/**
 * The chat log's views: a message (who, then the text), an error box with the buttons that are the
 * way on, and the streamed reply (one column per sample when n > 1, its state for the tests and for
 * screen readers, the summary line under it when it ends).
 */
import { adviceFor, type FailureKind } from './engineClient';
import { $, h } from './shell';

export type Role = 'user' | 'assistant' | 'error';

/** Appends a message to the log and returns the element that holds its text. */
export function addMessage(role: Role, who: string, text = ''): HTMLElement {
  $('#log-empty').hidden = true;
  const body = h('div', { class: 'text' }, text);
  const el = h('article', { class: `msg ${role}`, 'data-role': role }, h('h3', { class: 'who' }, who), body);
  $('#log').append(el);
  el.scrollIntoView({ block: 'end' });
  return body;
}

/** The error box under the model card or in the log, with buttons that are the way on. */
export function failureBox(kind: FailureKind, message: string, actions: [string, () => void][]): HTMLElement {
  const buttons = actions.map(([label, fn]) => {
    const b = h('button', { type: 'button' }, label);
    b.addEventListener('click', fn);
    return b;
  });
  return h(
    'div',
    { class: 'failure', role: 'alert', 'data-kind': kind },
    h('p', {}, h('strong', {}, message)),
    h('p', { class: 'small' }, adviceFor(kind)),
    buttons.length ? h('p', { class: 'actions' }, ...buttons) : '',
  );
}

/** What the summary line under a finished reply says. */
export interface ReplyStats {
  completionTokens: number;
  /** 'stop', 'length', 'abort', or null when the reply failed. */
  finish: string | null;
  promptTokens: number;
  /** Prompt tokens whose pages came from the prefix cache. */
  cachedTokens: number;
  droppedTurns: number;
}

/** One assistant reply being streamed into the log. */
export class ReplyView {
  /** The message element: data-state streaming | done | failed, data-tokens once finished. */
  readonly message: HTMLElement;
  private readonly columns: HTMLElement[];
  private readonly texts: string[];
  private readonly t0 = performance.now();
  private firstTokenMs: number | undefined;

  constructor(who: string, samples: number) {
    const first = addMessage('assistant', who);
    this.message = first.parentElement!;
    this.message.dataset.state = 'streaming';
    this.message.setAttribute('aria-busy', 'true'); // screen readers read the reply once, not per token
    // n > 1: one column per sample (forked after one prefill: their prompt pages are shared).
    this.columns = [first];
    if (samples > 1) {
      this.message.classList.add('samples');
      for (let i = 1; i < samples; i++) {
        const more = h('div', { class: 'text', 'data-sample': i });
        this.columns.push(more);
        this.message.append(more);
      }
    }
    this.texts = this.columns.map(() => '');
  }

  /** The first sample's text: the one the conversation keeps. */
  get text(): string {
    return this.texts[0];
  }

  get state(): string | undefined {
    return this.message.dataset.state;
  }

  append(delta: string, sample = 0): void {
    if (!delta || !this.columns[sample]) return;
    this.firstTokenMs ??= performance.now() - this.t0;
    this.texts[sample] += delta;
    this.columns[sample].textContent = this.texts[sample];
    this.message.scrollIntoView({ block: 'end' });
  }

  done(): void {
    this.message.dataset.state = 'done';
  }

  /** Marks the reply failed and puts `box` (see failureBox) under it. */
  fail(box: HTMLElement): void {
    this.message.dataset.state = 'failed';
    this.message.after(box);
  }

  /** The summary line: tokens, why it stopped, prompt and prefix-cache use, first-token time. */
  finish(s: ReplyStats): void {
    const stopped: Record<string, string> = { length: 'stopped at max tokens', abort: 'stopped', stop: 'finished' };
    const cached = s.cachedTokens ? ` (${s.cachedTokens} from the prefix cache)` : '';
    const dropped = s.droppedTurns;
    const meta = [
      `${s.completionTokens} token${s.completionTokens === 1 ? '' : 's'}`,
      (s.finish && stopped[s.finish]) ?? '',
      s.promptTokens ? `prompt ${s.promptTokens} tokens${cached}` : '',
      this.firstTokenMs !== undefined ? `first token after ${(this.firstTokenMs / 1000).toFixed(2)} s` : '',
      dropped ? `${dropped} oldest turn${dropped === 1 ? '' : 's'} left out to fit the context` : '',
    ].filter(Boolean);
    this.message.append(h('p', { class: 'meta muted small' }, meta.join(' · ')));
    this.message.dataset.tokens = String(s.completionTokens);
    this.message.removeAttribute('aria-busy');
    if (!this.text && s.finish !== 'abort' && this.state === 'done') this.columns[0].textContent = '(empty reply)';
  }
}

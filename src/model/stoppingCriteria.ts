// Stopping criteria of one generated sequence (transformers.js `generation/stopping_criteria`
// split): EOS tokens, a token budget and stop strings found in the streamed text, even when a stop
// string is split across tokens.

export type StopReason = 'eos' | 'max_tokens' | 'stop_string';

/**
 * Finds stop strings in streamed text, even split across tokens, and holds back text that could
 * still become one, so a stop string is never half shown.
 * Example, stop '\nUser:':  push('Hi\nUs') → { text: 'Hi', stopped: false } ('\nUs' held)
 *                           push('er: x')  → { text: '', stopped: true }    (stop found; 'Hi' was all)
 *                           (had it been push('ed'), text '\nUsed' would be released)
 */
export class StopStringMatcher {
  private held = '';
  private readonly stops: readonly string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  push(delta: string): { text: string; stopped: boolean; stopString?: string } {
    const buffer = this.held + delta;
    let at = -1;
    let which: string | undefined;
    for (const stop of this.stops) {
      const i = buffer.indexOf(stop);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        which = stop;
      }
    }
    if (at >= 0) {
      this.held = '';
      return { text: buffer.slice(0, at), stopped: true, stopString: which };
    }
    const keep = this.partialSuffixLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Releases held text when generation ends for another reason. */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }

  // Longest suffix of `buffer` that is a proper prefix of some stop string.
  private partialSuffixLength(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let len = Math.min(stop.length - 1, buffer.length); len > best; len--) {
        if (buffer.endsWith(stop.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}

export interface StoppingOptions {
  eosTokenIds?: Iterable<number>;
  /** Most tokens to generate; Infinity = no limit. */
  maxNewTokens?: number;
  stopStrings?: readonly string[];
}

/**
 * All stopping criteria of one sequence. Call step() once per generated token with its id and
 * the text the stream decoder returned for it; emit the returned text; stop when `stop` is set.
 * Example (eos 2, max 3, stop 'END'):
 *   step(5, 'aE') → { text: 'a',  stop: null }        ('E' held: could start 'END')
 *   step(6, 'N')  → { text: '',   stop: null }
 *   step(7, 'D!') → { text: '',   stop: 'stop_string' }
 *   Had the second token been the EOS: step(2, '') → { text: 'E', stop: 'eos' } (held text
 *   released; the EOS itself shows nothing). A third ordinary token ends with stop 'max_tokens'.
 */
export class StoppingCriteria {
  private readonly eos: ReadonlySet<number>;
  private readonly maxNewTokens: number;
  private readonly matcher: StopStringMatcher;
  private generated = 0;

  constructor(opts: StoppingOptions = {}) {
    this.eos = new Set(opts.eosTokenIds ?? []);
    this.maxNewTokens = opts.maxNewTokens ?? Infinity;
    if (!(this.maxNewTokens >= 1)) throw new RangeError(`maxNewTokens must be >= 1, got ${this.maxNewTokens}`);
    this.matcher = new StopStringMatcher(opts.stopStrings ?? []);
  }

  get tokensGenerated(): number {
    return this.generated;
  }

  isEos(tokenId: number): boolean {
    return this.eos.has(tokenId);
  }

  step(tokenId: number, textDelta: string): { text: string; stop: StopReason | null } {
    this.generated++;
    if (this.eos.has(tokenId)) return { text: this.matcher.flush(), stop: 'eos' };
    const { text, stopped } = this.matcher.push(textDelta);
    if (stopped) return { text, stop: 'stop_string' };
    if (this.generated >= this.maxNewTokens) return { text: text + this.matcher.flush(), stop: 'max_tokens' };
    return { text, stop: null };
  }

  /** Text still held back, for a caller that ends generation itself (cancel). */
  flush(): string {
    return this.matcher.flush();
  }
}

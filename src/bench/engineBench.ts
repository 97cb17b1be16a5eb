/**
 * Engine benchmark: decode throughput (tokens/s summed over sequences) at several batch sizes,
 * and time to first token for a long prompt with and without its prefix in the cache.
 *
 * Decode rows: B requests of `promptTokens` random ids, greedy, `decodeTokens` new tokens each,
 * EOS ignored so all B run to the end together; tokens/s = B / the median pure decode step (step
 * time from onStep: forward + sampling + streaming), best of `reps` runs, after a warm-up at the
 * same batch size.
 * TTFT: a fresh random prompt of `ttftPromptTokens` (nothing cached), then the same prompt with its
 * last 8 ids changed (all full pages but the last cached); median of `reps`.
 */
import type { Engine } from '../engine/engine';
import type { GenerateRequestOptions, StepInfo } from '../engine/types';

export interface EngineBenchOptions {
  batches?: number[]; // default [1, 2, 4, 8, 16], capped at the model's maxSeqs
  promptTokens?: number; // default 16
  decodeTokens?: number; // default 32
  ttftPromptTokens?: number; // default 200
  reps?: number; // default 3
  onProgress?: (message: string) => void;
}

export interface EngineDecodeRow {
  batch: number;
  tokensPerSecond: number;
  msPerStep: number;
  steps: number;
}

export interface EngineBenchReport {
  model: string;
  date: string;
  decode: EngineDecodeRow[];
  ttft: { promptTokens: number; coldMs: number; cachedMs: number; cachedTokens: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runEngineBench(engine: Engine, opts: EngineBenchOptions = {}): Promise<EngineBenchReport> {
  const maxSeqs = engine.model.opts.maxSeqs;
  const batches = (opts.batches ?? [1, 2, 4, 8, 16]).filter((b) => b <= maxSeqs);
  const P = opts.promptTokens ?? 16;
  const D = opts.decodeTokens ?? 32;
  const reps = opts.reps ?? 3;
  const vocab = engine.model.spec.vocabSize;
  let seed = 1;
  const randomIds = (n: number) => {
    // a small LCG: fresh ids every call, the same run to run
    return Array.from({ length: n }, () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % vocab;
    });
  };
  const steps: StepInfo[] = [];
  const previous = engine.onStep;
  engine.onStep = (s) => {
    steps.push(s);
    previous?.(s);
  };
  const greedy: GenerateRequestOptions = { temperature: 0, ignoreEos: true };
  const drain = async (it: AsyncIterable<unknown>) => {
    for await (const _ of it) void _;
  };
  const firstToken = async (ids: number[]) => {
    const t0 = performance.now();
    const it = engine.generate(ids, { ...greedy, maxTokens: 1 })[Symbol.asyncIterator]();
    let chunk = await it.next();
    const ms = performance.now() - t0;
    const cached =
      (chunk.value as { usage?: { cachedPromptTokens: number } } | undefined)?.usage?.cachedPromptTokens ?? 0;
    while (!chunk.done) chunk = await it.next();
    return { ms, cached };
  };
  const L = opts.ttftPromptTokens ?? Math.min(200, engine.model.opts.maxContext - 2);
  try {
    opts.onProgress?.('warm-up (pipelines compile on first use)');
    await Promise.all([
      drain(engine.generate(randomIds(P), { ...greedy, maxTokens: 4 })),
      drain(engine.generate(randomIds(P), { ...greedy, maxTokens: 4 })),
    ]);
    await drain(engine.generate(randomIds(L), { ...greedy, maxTokens: 2 }));

    const decode: EngineDecodeRow[] = [];
    for (const B of batches) {
      await Promise.all(
        Array.from({ length: B }, () => drain(engine.generate(randomIds(P), { ...greedy, maxTokens: 4 }))),
      ); // warm-up
      // The median step of each run, the best of `reps` runs: a shared machine's stalls would
      // otherwise dominate.
      let ms = Infinity;
      let count = 0;
      for (let rep = 0; rep < reps; rep++) {
        steps.length = 0;
        await Promise.all(
          Array.from({ length: B }, () => drain(engine.generate(randomIds(P), { ...greedy, maxTokens: D }))),
        );
        const pure = steps.filter((s) => s.prefillTokens === 0 && s.decodeTokens === B);
        if (pure.length === 0) continue;
        ms = Math.min(ms, median(pure.map((s) => s.ms)));
        count += pure.length;
      }
      const row = { batch: B, tokensPerSecond: Number.isFinite(ms) ? (B * 1000) / ms : 0, msPerStep: ms, steps: count };
      decode.push(row);
      opts.onProgress?.(
        `decode batch ${B}: ${row.tokensPerSecond.toFixed(1)} tok/s (${row.msPerStep.toFixed(2)} ms/step)`,
      );
    }

    const cold: number[] = [];
    const warm: number[] = [];
    let cachedTokens = 0;
    for (let r = 0; r < reps; r++) {
      const ids = randomIds(L);
      cold.push((await firstToken(ids)).ms);
      const hit = await firstToken([...ids.slice(0, L - 8), ...randomIds(8)]);
      warm.push(hit.ms);
      cachedTokens = hit.cached;
    }
    const ttft = { promptTokens: L, coldMs: median(cold), cachedMs: median(warm), cachedTokens };
    opts.onProgress?.(
      `TTFT ${L} tokens: ${ttft.coldMs.toFixed(1)} ms cold, ${ttft.cachedMs.toFixed(1)} ms with ${cachedTokens} cached`,
    );
    return { model: engine.modelName, date: new Date().toISOString(), decode, ttft };
  } finally {
    engine.onStep = previous;
  }
}

export interface FormatDecodeRow {
  /** The weightDtype the model was loaded with (matrices; norms stay f32). */
  weightDtype: string;
  /** Batch-1 decode: tokens/s of the median pure decode step (best of reps runs). */
  decodeTokensPerSecond: number;
  decodeMsPerToken: number;
  /** A fresh `promptTokens` prompt's time to first token, per prompt token. */
  prefillMsPerToken: number;
  prefillTokensPerSecond: number;
  promptTokens: number;
}

/**
 * Batch-1 decode and prefill per token of one model at each weight format: `load` builds the engine
 * for a format (the caller owns model loading), which is disposed after its row. Decode per token
 * against prefill per token is the SwiftShader check (issue: decode 2.4 tok/s against 52-61 tok/s
 * prefill there).
 */
export async function runFormatDecodeBench(
  load: (weightDtype: string) => Promise<Engine>,
  formats: readonly string[],
  opts: { decodeTokens?: number; promptTokens?: number; reps?: number; onProgress?: (m: string) => void } = {},
): Promise<FormatDecodeRow[]> {
  const rows: FormatDecodeRow[] = [];
  for (const weightDtype of formats) {
    opts.onProgress?.(`${weightDtype} weights: loading`);
    const engine = await load(weightDtype);
    try {
      const promptTokens = Math.min(opts.promptTokens ?? 64, engine.model.opts.maxContext - 2);
      const r = await runEngineBench(engine, {
        batches: [1],
        decodeTokens: opts.decodeTokens ?? 24,
        ttftPromptTokens: promptTokens,
        reps: opts.reps ?? 2,
      });
      const d = r.decode[0];
      const row = {
        weightDtype,
        decodeTokensPerSecond: d.tokensPerSecond,
        decodeMsPerToken: d.msPerStep,
        prefillMsPerToken: r.ttft.coldMs / promptTokens,
        prefillTokensPerSecond: (promptTokens * 1000) / r.ttft.coldMs,
        promptTokens,
      };
      rows.push(row);
      opts.onProgress?.(
        `${weightDtype} weights: decode ${row.decodeTokensPerSecond.toFixed(1)} tok/s, ` +
          `prefill ${row.prefillTokensPerSecond.toFixed(1)} tok/s`,
      );
    } finally {
      engine.dispose();
    }
  }
  return rows;
}

export function formatFormatDecode(rows: FormatDecodeRow[], model: string): string {
  const lines = [
    `decode and prefill of ${model} at each weight format (batch 1):`,
    '',
    '| weights | decode tok/s | decode ms / token | prefill tok/s | prefill ms / token | decode / prefill time |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.weightDtype} | ${r.decodeTokensPerSecond.toFixed(1)} | ${r.decodeMsPerToken.toFixed(2)} | ` +
        `${r.prefillTokensPerSecond.toFixed(1)} | ${r.prefillMsPerToken.toFixed(2)} | ` +
        `${(r.decodeMsPerToken / r.prefillMsPerToken).toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}

export function formatEngineBench(r: EngineBenchReport, adapter = ''): string {
  const lines = [
    `engine benchmark: ${r.model}${adapter ? ` on ${adapter}` : ''}`,
    '',
    '| batch | decode tok/s (sum) | median ms / step | x batch 1 |',
    '|------:|-------------------:|----------:|----------:|',
  ];
  const one = r.decode.find((d) => d.batch === 1)?.tokensPerSecond ?? 0;
  for (const d of r.decode) {
    const speedup = one ? (d.tokensPerSecond / one).toFixed(2) : '-';
    lines.push(`| ${d.batch} | ${d.tokensPerSecond.toFixed(1)} | ${d.msPerStep.toFixed(2)} | ${speedup} |`);
  }
  lines.push(
    '',
    `time to first token, ${r.ttft.promptTokens}-token prompt: ${r.ttft.coldMs.toFixed(1)} ms cold, ` +
      `${r.ttft.cachedMs.toFixed(1)} ms with ${r.ttft.cachedTokens} tokens from the prefix cache`,
  );
  return lines.join('\n');
}

/**
 * A random llama (hidden 256, 4 layers, 8/2 heads of 32, vocab 257) with a byte-level tokenizer,
 * written to a temporary folder (Node): the benchmark's model when no checkpoint is given.
 */
export async function writeRandomBenchModel(): Promise<string> {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { parseConfig } = await import('../model/config');
  const { expectedTensors } = await import('../model/expectedTensors');
  const { writeSafetensors } = await import('../sources/safetensors');
  const config = {
    model_type: 'llama',
    hidden_size: 256,
    intermediate_size: 512,
    num_hidden_layers: 4,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    vocab_size: 257,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    eos_token_id: 256,
  };
  let s = 7;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
  const tensors: Parameters<typeof writeSafetensors>[0] = {};
  for (const [name, shape] of expectedTensors(parseConfig(config))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const scale = name.endsWith('norm.weight') ? 0 : name.includes('embed') ? 2 : 3.4 / Math.sqrt(shape[1] ?? 1);
    const data = Float32Array.from({ length: n }, () => (name.endsWith('norm.weight') ? 1 : scale * rand()));
    tensors[name] = { dtype: 'F16', shape, data };
  }
  // Byte-level BPE without merges: ids 0..255 are the bytes (GPT-2's byte-to-character map), 256 ends text.
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const vocab: Record<string, number> = {};
  let extra = 0;
  for (let b = 0; b < 256; b++) vocab[printable(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++)] = b;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    normalizer: null,
    post_processor: null,
    added_tokens: [
      {
        id: 256,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webattn-bench-model-'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|endoftext|>' }));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(tensors));
  return dir;
}

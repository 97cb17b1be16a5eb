/**
 * KV dtype quality (issue 17): the logits of a model with f16 / q8 / q4 KV pages against the same
 * model with f32 KV, and perplexity on held-out text at each KV dtype. Weights stay f32, so only the
 * KV storage differs.
 *
 *   node bin/run-ts.js scripts/kvQuality.ts [--windows N]
 *
 * Models: the shipped models/kjv-{gqa,mha,mqa,mla} (kjv-gqa: GQA 8/2, d 16; context 256: held-out KJV chapters,
 * test/fixtures/models/kjv-validation-lines.json.gz, in windows of 256 after BOS) and llama2.c's
 * stories260K (../shared/realworld/gguf/stories260K-F32.gguf, GQA 8/4, d 8; 512 tokens: its own
 * greedy continuation of BOS, so the text is in-distribution). For each: relative L2 of all logits
 * against f32 KV, the share of positions whose top-1 token agrees, and perplexity (kjv-gqa: of the
 * held-out text; stories260K: of its f32-KV greedy text, a consistency check). A KV dtype the model
 * refuses (q4 on stories260K's d 8 heads: src/kv/accounting.ts kvDtypeProblem) prints the reason.
 */
import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createContext } from '../src/gpu/context';
import type { KvDtype } from '../src/gpu/dtype';
import { logitsForIds, StepRunner } from '../src/engine/stepRunner';
import { Transformer } from '../src/model/transformer';
import { ggufModelFiles } from '../src/model/ggufModelFiles';
import { relL2 } from '../src/reference/attention';
import { kvDtypeProblem } from '../src/kv/accounting';
import { parseConfig } from '../src/model/config';
import { kvSpecOf } from '../src/model/kvBill';
import { folderSource, loadModelFiles, type ModelFiles } from '../src/sources/modelSource';

const KV: KvDtype[] = ['f32', 'f16', 'q8', 'q4'];

async function logitsAt(files: ModelFiles, kvDtype: KvDtype, windows: number[][]): Promise<Float32Array[]> {
  const ctx = await createContext();
  const maxLen = Math.max(...windows.map((w) => w.length));
  const m = await Transformer.load(ctx, files, {
    weightDtype: 'f32',
    kvDtype,
    maxTokens: maxLen,
    maxSeqs: 1,
    maxLogitRows: maxLen,
    maxContext: maxLen,
  });
  try {
    const out: Float32Array[] = [];
    for (const ids of windows) out.push(await logitsForIds(m, ids, ids.length));
    return out;
  } finally {
    m.destroy();
  }
}

/** exp(mean NLL of ids[t + 1] under row t), over every window. */
function perplexity(logits: Float32Array[], windows: number[][], V: number): number {
  let nll = 0;
  let count = 0;
  windows.forEach((ids, w) => {
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = logits[w].subarray(t * V, (t + 1) * V);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      nll += max + Math.log(sum) - row[ids[t + 1]];
      count++;
    }
  });
  return Math.exp(nll / count);
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

async function report(name: string, files: ModelFiles, windows: number[][], V: number) {
  const byKv = new Map<KvDtype, Float32Array[]>();
  const refused = new Map<KvDtype, string>();
  for (const kv of KV) {
    const problem = kvDtypeProblem(kvSpecOf(parseConfig(ggufModelFiles(files).config), kv));
    if (problem)
      refused.set(kv, problem); // Transformer.load refuses it with this text
    else byKv.set(kv, await logitsAt(files, kv, windows));
  }
  const base = byKv.get('f32')!;
  const rows: Record<string, number | string>[] = [];
  for (const kv of KV) {
    const got = byKv.get(kv);
    if (!got) {
      rows.push({ model: name, kv, refused: refused.get(kv)! });
      continue;
    }
    let agree = 0;
    let total = 0;
    let num = 0;
    let den = 0;
    got.forEach((l, w) => {
      const e = relL2(l, base[w]);
      const n2 = base[w].reduce((a, b) => a + b * b, 0);
      num += e * e * n2;
      den += n2;
      for (let t = 0; t < windows[w].length; t++) {
        total++;
        if (argmax(l.subarray(t * V, (t + 1) * V)) === argmax(base[w].subarray(t * V, (t + 1) * V))) agree++;
      }
    });
    rows.push({
      model: name,
      kv,
      tokens: windows.reduce((a, w) => a + w.length, 0),
      context: Math.max(...windows.map((w) => w.length)),
      relL2VsF32: Number(Math.sqrt(num / den).toExponential(3)),
      top1AgreeVsF32: Number((agree / total).toFixed(4)),
      perplexity: Number(perplexity(got, windows, V).toFixed(4)),
    });
  }
  const f16 = rows.find((r) => r.kv === 'f16')!.perplexity as number;
  for (const r of rows) if (!r.refused) r.pplVsF16 = Number(((r.perplexity as number) / f16 - 1).toFixed(5));
  console.table(rows);
  console.log(JSON.stringify(rows));
}

export async function main(argv: string[]): Promise<number> {
  const i = argv.indexOf('--windows');
  const numWindows = i >= 0 ? Number(argv[i + 1]) : 8;
  const ctx = await createContext();
  console.log(`adapter: ${ctx.adapterDescription}`);

  // kjv-gqa: held-out chapters concatenated, cut into windows of BOS + 255 tokens.
  const validation = JSON.parse(
    gunzipSync(readFileSync('test/fixtures/models/kjv-validation-lines.json.gz')).toString('utf8'),
  ) as { ids: number[][] };
  const stream = validation.ids.flat();
  const kjvWindows = Array.from({ length: numWindows }, (_, w) => [0, ...stream.slice(w * 255, (w + 1) * 255)]);
  // Every shipped model (GQA, MHA, MQA, MLA: the MLA latent row is what q8 / q4 quantise there).
  for (const name of ['kjv-gqa', 'kjv-mha', 'kjv-mqa', 'kjv-mla']) {
    if (!existsSync(`models/${name}`)) continue;
    await report(name, await loadModelFiles(folderSource(`models/${name}`)), kjvWindows, 2048);
  }

  const gguf = '../shared/realworld/gguf';
  if (existsSync(`${gguf}/stories260K-F32.gguf`)) {
    const files = ggufModelFiles(await loadModelFiles(folderSource(gguf, { ggufFile: 'stories260K-F32.gguf' })));
    // Its own greedy continuation of BOS (id 1) with f32 KV, 512 tokens, teacher-forced at every dtype.
    const ids = [1];
    const m = await Transformer.load(ctx, files, {
      weightDtype: 'f32',
      kvDtype: 'f32',
      maxTokens: 512,
      maxSeqs: 1,
      maxLogitRows: 512,
      maxContext: 512,
    });
    const runner = await StepRunner.create(m, { numPages: 40 });
    try {
      let last = await runner.step([{ seqId: 1, tokenIds: ids }]);
      while (ids.length < 512) {
        ids.push(argmax(last));
        last = await runner.step([{ seqId: 1, tokenIds: [ids[ids.length - 1]] }]);
      }
    } finally {
      runner.destroy();
      m.destroy();
    }
    await report('stories260K', files, [ids], 512);
  }
  return 0;
}

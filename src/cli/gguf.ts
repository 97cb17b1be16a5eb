/**
 * `webattn gguf`: writes a safetensors model folder as one GGUF file (src/model/ggufWriter.ts), the
 * file llama.cpp's convert_hf_to_gguf.py would write, for runtimes that read only GGUF (llama.cpp,
 * wllama in the peer benchmark). No GPU is touched.
 */
import { writeFile } from 'node:fs/promises';
import { MODEL_OPTIONS, openModel } from './modelFiles';
import { type Command, options, UsageError } from './options';

const TYPES = ['F32', 'F16', 'Q8_0', 'Q4_0'] as const;

export const ggufCommand: Command = {
  summary: 'write a safetensors model folder as a GGUF file (for llama.cpp / wllama)',
  usage: `usage: webattn gguf --model <folder|url|org/name> --out model.gguf [--type F32|F16|Q8_0|Q4_0] [--name NAME]

Writes what llama.cpp's convert_hf_to_gguf.py writes for the folder (llama, qwen2, qwen3 with a
byte-level BPE tokenizer.json): metadata, tokenizer, chat template and tensors (llama's q/k rows
permuted for llama.cpp's RoPE). --type F32 (default): every tensor F32; F16: matrices F16, norms F32;
Q8_0: matrices Q8_0 (F16 where rows are not whole 32-value blocks); Q4_0: as llama-quantize's Q4_0
(the embedding Q8_0). --name sets general.name (default: the folder's name, title-cased).`,
  run: gguf,
};

async function gguf(argv: string[]): Promise<number> {
  const opts = options(argv, {
    model: MODEL_OPTIONS.model,
    out: { type: 'string' },
    type: { type: 'string' },
    name: { type: 'string' },
  });
  if (opts.out === undefined) throw new UsageError('--out is required (where to write the .gguf file)');
  const type = (opts.type ?? 'F32') as (typeof TYPES)[number];
  if (!TYPES.includes(type)) throw new UsageError(`--type must be ${TYPES.join(', ')}, got '${opts.type}'`);
  const files = await openModel(opts.model, true);
  if (files.gguf) throw new UsageError(`${files.source}: already a GGUF file`);
  const { writeModelGguf } = await import('../model/ggufWriter');
  const bytes = writeModelGguf(files, { type, name: opts.name });
  await writeFile(opts.out, bytes);
  console.log(`wrote ${opts.out} (${type}, ${(bytes.length / 2 ** 20).toFixed(1)} MiB)`);
  return 0;
}

/**
 * `webattn attention`: one attention case file (q, k, v and their shapes, see attentionCase.ts)
 * through the paged KV cache and the WGSL kernels; writes out and lse as safetensors.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { AttentionArgs } from '../api/attention';
import { parseSafetensors, writeSafetensors } from '../sources/safetensors';
import { CaseError, parseAttentionCase } from './attentionCase';
import { withGpu } from './gpuSession';
import { type Command, options, positiveIntegerOption, UsageError } from './options';

export const attentionCommand: Command = {
  summary: 'run attention on the GPU for a case file (q, k, v + shapes) and write out and lse',
  usage: `usage: webattn attention --in case.safetensors --out result.safetensors [--kv-dtype f32|f16] [--page-size N]

Runs attention(q, k, v) through the paged KV cache and the WGSL kernels on this machine's WebGPU
adapter (printed on stderr) and writes F32 tensors out [Tq, H, Dv] and lse [Tq, H] (natural log).

options:
  --in FILE         the case: F32 tensors q [Tq, H, Dqk], k [Tk, Hkv, Dqk], v [Tk, Hkv, Dv]
                    and __metadata__ strings:
                      numHeads, numKvHeads, headDimQK, headDimV   integers, numHeads % numKvHeads == 0
                      seqLensQ, seqLensKV   JSON arrays, e.g. "[3,1]" and "[5,6]" (Tq, Tk are their sums;
                                            query i of a sequence sits at its last seqLensQ positions)
                      causal                "1" or "0"
                      scale                 optional float, default 1/sqrt(headDimQK)
                      window                optional sliding window in tokens, "0" = none
  --out FILE        where to write the result (safetensors)
  --kv-dtype T      KV cache storage: f32 (default) or f16
  --page-size N     tokens per KV page (default 16)

exit codes: 0 ok, 1 runtime failure, 2 malformed input or usage`,
  run: attention,
};

async function attention(argv: string[]): Promise<number> {
  const opts = options(argv, {
    in: { type: 'string' },
    out: { type: 'string' },
    'kv-dtype': { type: 'string' },
    'page-size': { type: 'string' },
  });
  if (opts.in === undefined) throw new UsageError('--in is required (the case file; see --help)');
  if (opts.out === undefined) throw new UsageError('--out is required (where to write the result)');
  const kvDtype = opts['kv-dtype'] ?? 'f32';
  if (kvDtype !== 'f32' && kvDtype !== 'f16') throw new UsageError(`--kv-dtype must be f32 or f16, got '${kvDtype}'`);
  const pageSize = positiveIntegerOption('page-size', opts['page-size']);

  const args = await readCase(opts.in, kvDtype, pageSize);
  const { attention: runAttention, checkAttentionArgs } = await import('../api/attention');
  try {
    checkAttentionArgs(args); // what the kernels can't take (e.g. head dims not a multiple of 4) is an input error too
  } catch (e) {
    throw new UsageError(`${opts.in}: ${(e as Error).message}`);
  }
  const outFile = opts.out;
  return withGpu('attention', async ({ ctx }) => {
    const t0 = performance.now();
    const { out, lse } = await runAttention(ctx, args);
    const ms = performance.now() - t0;
    const Tq = args.seqLensQ.reduce((a, b) => a + b, 0);
    const H = args.numHeads;
    await writeFile(
      outFile,
      writeSafetensors(
        {
          out: { dtype: 'F32', shape: [Tq, H, args.headDimV], data: out },
          lse: { dtype: 'F32', shape: [Tq, H], data: lse },
        },
        { adapter: ctx.adapterDescription, kvDtype, pageSize: String(args.pageSize ?? 16) },
      ),
    );
    console.log(`wrote out [${Tq}, ${H}, ${args.headDimV}] and lse [${Tq}, ${H}] to ${outFile} (${ms.toFixed(1)} ms)`);
    return 0;
  });
}

/** The case file `file` as attention arguments; unreadable or malformed files are UsageErrors naming it. */
async function readCase(file: string, kvDtype: 'f32' | 'f16', pageSize: number | undefined): Promise<AttentionArgs> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (e as Error).message;
    throw new UsageError(`--in ${file}: ${why}`);
  }
  const parsed = parseSafetensors(bytes, file);
  try {
    return { ...parseAttentionCase(parsed), kvDtype, ...(pageSize !== undefined ? { pageSize } : {}) };
  } catch (e) {
    if (e instanceof CaseError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}

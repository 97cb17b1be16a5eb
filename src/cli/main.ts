/**
 * The `webattn` command line (Node only; run through bin/webattn.js, which loads this file with
 * Vite's module runner so WGSL `?raw` imports work with no build step, or the built dist/cli.js).
 *
 *   webattn <command> [options]      webattn --help      webattn <command> --help
 *
 * Exit codes: 0 ok, 1 runtime failure (no GPU, device lost, ...), 2 bad usage or malformed input
 * (always a single line on stderr naming the option or field).
 *
 * Each command lives in its own file (attention, logits, info, generate, bench, gguf) as a Command: a
 * one-line summary, its usage text and a run function. GPU code is imported lazily inside the
 * command that needs it (see gpuSession.ts), so `--help` and input validation never touch the
 * GPU layer.
 */
import { SafetensorsError } from '../sources/safetensors';
import { attentionCommand } from './attention';
import { CaseError } from './attentionCase';
import { benchCommand } from './bench';
import { generateCommand } from './generate';
import { ggufCommand } from './gguf';
import { infoCommand } from './info';
import { logitsCommand } from './logits';
import { type Command, UsageError } from './options';

export { UsageError } from './options';

const COMMANDS: Record<string, Command> = {
  attention: attentionCommand,
  logits: logitsCommand,
  info: infoCommand,
  generate: generateCommand,
  bench: benchCommand,
  gguf: ggufCommand,
};

/** Errors of these names come from bad input (options, case files, checkpoints, prompts that do not fit). */
const INPUT_ERROR_NAMES = [
  'ModelConfigError',
  'ModelSourceError',
  'WeightError',
  'ShapeError',
  'GgufTokenizerError',
  'GgufWriteError',
];

function mainUsage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: webattn <command> [options]

WebGPU attention runtime: paged KV cache and FlashAttention-style WGSL kernels.

commands:
${lines.join('\n')}

Run 'webattn <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(mainUsage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) {
      console.error(`webattn: unknown command '${topic}' (try 'webattn --help')`);
      return 2;
    }
    console.log(topic !== undefined ? COMMANDS[topic].usage : mainUsage());
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    const known = Object.keys(COMMANDS).join(', ');
    console.error(`webattn: unknown command '${name}' (commands: ${known}; try 'webattn --help')`);
    return 2;
  }
  const command = COMMANDS[name];
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    // Bad input exits 2; the rest 1.
    const input =
      e instanceof UsageError ||
      e instanceof CaseError ||
      e instanceof SafetensorsError ||
      INPUT_ERROR_NAMES.includes((e as Error)?.name);
    if (process.env.WEBATTN_DEBUG) console.error(e);
    else console.error(`webattn ${name}: ${oneLine(e)}`);
    return input ? 2 : 1;
  }
}

function oneLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.replace(/\s*\n\s*/g, ' ');
}

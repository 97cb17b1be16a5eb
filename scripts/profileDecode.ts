/**
 * Where a decode step's time goes: batch-1 decode steps of a model (default models/kjv-gqa) at one
 * weight format, each encoded in one of several modes that alternate step by step on one sequence:
 *   full         the real step;
 *   none         no dispatch at all (what is left: upload, encode, submit, readback of the logits);
 *   only <k>     only kernel <k>'s dispatches;
 *   without <k>  every dispatch but kernel <k>'s.
 * (The logits are garbage in every mode but full; only the time is read.) Reported: the median wall
 * time and process CPU time per mode (the software adapters run inside this process, so CPU time
 * counts their work, not a loaded machine's waits), the dispatches per step, and the host's share
 * (upload + encode until submit).
 *
 *   node bin/run-ts.js scripts/profileDecode.ts [--dtype f16] [--model DIR] [--rounds 8] [--prompt 16]
 *
 * Select the adapter with WEBATTN_VK_ICD (see src/gpu/node.ts). A development tool, not a test.
 */
import { parseArgs } from 'node:util';
import { createContext } from '../src/gpu/context';
import { Kernel } from '../src/kernels/kernel';
import { RowShardedKernel } from '../src/kernels/rowShards';
import { median } from '../src/gpu/timer';
import { Transformer } from '../src/model/transformer';
import type { LoadDtype } from '../src/model/weights';
import { StepRunner } from '../src/engine/stepRunner';
import { openModel } from '../src/cli/modelFiles';

/** Dispatch counts per kernel name in the current step; which kernels the current mode encodes. */
const counts = new Map<string, number>();
const workgroups = new Map<string, number>();
let encodes: (name: string) => boolean = () => true;

type Encodes = { encode: (pass: GPUComputePassEncoder, g: GPUBindGroup, n: number) => void };
function instrument(proto: Encodes): void {
  const original = proto.encode;
  proto.encode = function (this: { name: string; grid(n: number): readonly number[] }, pass, g, n) {
    if (n > 0) {
      counts.set(this.name, (counts.get(this.name) ?? 0) + 1);
      const [x, y = 1, z = 1] = this.grid(n);
      workgroups.set(this.name, (workgroups.get(this.name) ?? 0) + x * y * z);
    }
    if (encodes(this.name)) original.call(this, pass, g, n);
  };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dtype: { type: 'string', default: 'f16' },
      model: { type: 'string', default: 'models/kjv-gqa' },
      rounds: { type: 'string', default: '8' },
      prompt: { type: 'string', default: '16' },
    },
  });
  const rounds = Number(values.rounds);
  const promptLen = Number(values.prompt);
  instrument(Kernel.prototype as never);
  instrument(RowShardedKernel.prototype as never);
  const ctx = await createContext();
  console.log(`adapter: ${ctx.adapterDescription}; shader-f16 ${ctx.features.shaderF16}`);
  const files = await openModel(values.model, false);
  const model = await Transformer.load(ctx, files, { maxSeqs: 1, weightDtype: values.dtype as LoadDtype });
  const runner = await StepRunner.create(model);
  const V = model.spec.vocabSize;

  const queue = ctx.device.queue;
  const submit = queue.submit.bind(queue);
  let tSubmit = 0;
  queue.submit = (bufs) => {
    tSubmit = performance.now();
    submit(bufs);
  };

  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 37 + 5) % V);
  const seqId = 1;
  await runner.step([{ seqId, tokenIds: prompt }]);
  let token = 3;
  const step = async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await runner.step([{ seqId, tokenIds: [token] }]);
    const t1 = performance.now();
    token = (token * 11 + 3) % V;
    const c = process.cpuUsage(c0);
    return { wall: t1 - t0, cpu: (c.user + c.system) / 1000, host: tSubmit - t0 };
  };
  for (let i = 0; i < 3; i++) await step(); // warm-up: pipelines compile at first use on software adapters
  counts.clear();
  workgroups.clear();
  await step();
  const perStep = new Map(counts);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const list = (m: Map<string, number>) => [...m].map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`dispatches per decode step: ${sum(perStep)}: ${list(perStep)}`);
  console.log(`workgroups per decode step: ${sum(workgroups)}: ${list(workgroups)}`);

  const modes: [string, (name: string) => boolean][] = [
    ['full', () => true],
    ['none', () => false],
    ...[...perStep.keys()].flatMap((k): [string, (name: string) => boolean][] => [
      [`only ${k}`, (n) => n === k],
      [`without ${k}`, (n) => n !== k],
    ]),
  ];
  const steps = rounds * modes.length;
  const room = model.opts.maxContext - promptLen - 4;
  if (steps > room) throw new Error(`${steps} steps do not fit the context (${room}): fewer --rounds`);
  const times = new Map<string, { wall: number; cpu: number; host: number }[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [label, f] of modes) {
      encodes = f;
      const t = await step();
      encodes = () => true;
      times.set(label, [...(times.get(label) ?? []), t]);
    }
  }
  const med = (label: string, key: 'wall' | 'cpu' | 'host') => median(times.get(label)!.map((t) => t[key]));
  const full = { wall: med('full', 'wall'), cpu: med('full', 'cpu') };
  const none = { wall: med('none', 'wall'), cpu: med('none', 'cpu') };
  console.log(
    `\n${values.model} ${values.dtype}, ${rounds} rounds: full step ${full.wall.toFixed(2)} ms wall / ` +
      `${full.cpu.toFixed(2)} ms CPU (host to submit ${med('full', 'host').toFixed(2)} ms); ` +
      `no dispatch ${none.wall.toFixed(2)} / ${none.cpu.toFixed(2)}`,
  );
  console.log(
    '| kernel | dispatches | only: wall - none | only: CPU - none | full - without: wall | full - without: CPU |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [k, n] of perStep) {
    const only = { wall: med(`only ${k}`, 'wall') - none.wall, cpu: med(`only ${k}`, 'cpu') - none.cpu };
    const without = { wall: full.wall - med(`without ${k}`, 'wall'), cpu: full.cpu - med(`without ${k}`, 'cpu') };
    console.log(
      `| ${k} | ${n} | ${only.wall.toFixed(2)} | ${only.cpu.toFixed(2)} | ` +
        `${without.wall.toFixed(2)} | ${without.cpu.toFixed(2)} |`,
    );
  }
  runner.destroy();
  model.destroy();
  ctx.destroy();
  return 0;
}

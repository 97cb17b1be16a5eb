#!/usr/bin/python3
"""Retrains the four shipped models (models/kjv-{mha,gqa,mqa,mla}) and their test fixtures.

    /usr/bin/python3 tools/train/train_all.py            # everything, from the repo root
                                                         # (598 steps: the shipped models)
    /usr/bin/python3 tools/train/train_all.py --measure 5  # only time 5 steps of each model

Needs Debian's bible-kjv, python3-torch and libopenblas0-pthread (the reference BLAS is ~12x slower).
Steps:
  1. KJV text (data.py), chapters split 95/5 into training / validation.
  2. Byte-level BPE tokenizer (bpe.py) trained on the training chapters.
  3. The four models (model.py, configs.py) trained in lockstep on the same batches: each step
     draws one batch and every model takes one AdamW step on it, so all four see the same data.
  4. Validation loss on every validation token; export to models/<name>/ in F16; fixtures
     (prompt ids and torch logits at the shipped f16 weights) to test/fixtures/models/.
Deterministic: fixed seeds, one thread by default. A checkpoint under --work lets an interrupted
run resume (--resume).
"""
import argparse
import base64
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import configs  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
from model import Decoder  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
SAMPLE_PROMPT = 'In the beginning'
FIXTURE_TOKENS = 16


def log(*a):
    print(time.strftime('%H:%M:%S'), *a, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--steps', type=int, default=598)  # the shipped run (chosen by --deadline on 2026-11-29)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--seq', type=int, default=256)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--warmup', type=int, default=30)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=1234)
    p.add_argument('--measure', type=int, default=0, help='time this many steps, then stop (no export)')
    p.add_argument('--work', default='/tmp/webattn-train', help='checkpoints')
    p.add_argument('--resume', action='store_true')
    p.add_argument('--only-export', action='store_true', help='export from the last checkpoint without training')
    p.add_argument('--deadline', default=None,
                   help='UTC HH:MM: until the decay starts, set --steps (at most --max-steps) '
                        'to what fits before then; the run logs the final count, '
                        'and rerunning with --steps <that count> reproduces it exactly')
    p.add_argument('--max-steps', type=int, default=3000)
    p.add_argument('--out', default=REPO, help='where models/ and test/fixtures/models/ go')
    return p.parse_args()


def token_stream(encoder, chapters):
    """One int64 array: <s> chapter </s> <s> chapter </s> ..."""
    bos, eos = encoder.vocab['<s>'], encoder.vocab['</s>']
    out = []
    for text in chapters:
        out.append(bos)
        out.extend(encoder.encode(text))
        out.append(eos)
    return np.array(out, dtype=np.int64)


def decay_start(steps):
    return steps - steps // 4


def lr_at(step, args):
    """Warmup, constant, then a linear decay to 10% over the last quarter (warmup-stable-decay).
    Until the decay starts the rate does not depend on --steps, which lets --deadline choose the
    step count late (see replan) while a rerun with --steps <final count> stays identical."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    d = decay_start(args.steps)
    if step < d:
        return args.lr
    return args.lr * (1 - 0.9 * (step - d + 1) / (args.steps - d))


def replan(step, start, t_start, args):
    """--deadline: the step count that fits before then at the mean rate so far; only before the decay starts."""
    if not args.deadline or step < start + 10 or step + 1 >= decay_start(args.steps):
        return
    per = (time.time() - t_start) / (step + 1 - start)
    hh, mm = map(int, args.deadline.split(':'))
    now = time.gmtime()
    left = (hh * 60 + mm) * 60 - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)
    fit = step + 1 + int(left / per)
    fit = max(fit, (step + 2) * 4 // 3 + 1, args.warmup + 4)  # never start the decay in the past
    fit = min(fit, args.max_steps)
    if fit != args.steps:
        log(f'deadline {args.deadline} UTC: {per:.2f} s/step, {left} s left: steps {args.steps} -> {fit}')
        args.steps = fit


def make_optimizer(model, lr):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    keep = [p for n, p in model.named_parameters() if p.dim() != 2]
    groups = [{'params': decay, 'weight_decay': 0.1}, {'params': keep, 'weight_decay': 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


@torch.no_grad()
def validation_loss(model, stream, seq):
    """Mean next-token cross-entropy over every validation token, in non-overlapping windows."""
    model.eval()
    total, count = 0.0, 0
    n = (len(stream) - 1) // seq
    for start in range(0, n, 16):
        rows = range(start, min(n, start + 16))
        x = torch.from_numpy(np.stack([stream[r * seq:(r + 1) * seq] for r in rows]))
        y = torch.from_numpy(np.stack([stream[r * seq + 1:(r + 1) * seq + 1] for r in rows]))
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction='sum').item()
        count += y.numel()
    model.train()
    return total / count, count


@torch.no_grad()
def greedy(model, ids, n, eos):
    model.eval()
    ids = list(ids)
    out = []
    for _ in range(n):
        logits = model(torch.tensor([ids[-256:]]))[0, -1]
        nxt = int(logits.argmax())
        if nxt == eos:
            break
        ids.append(nxt)
        out.append(nxt)
    return out


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)

    t0 = time.time()
    chapters = data.load_chapters()
    train_text, val_text = data.split_chapters(chapters)
    merges = bpe.train(train_text, configs.COMMON['vocab_size'])
    enc = bpe.Encoder(merges)
    assert len(enc.vocab) == configs.COMMON['vocab_size'], len(enc.vocab)
    train_ids = token_stream(enc, train_text)
    val_ids = token_stream(enc, val_text)
    log(f'data: {len(chapters)} chapters ({len(train_text)} train, {len(val_text)} validation), '
        f'{len(train_ids)} train / {len(val_ids)} validation tokens; tokenizer {time.time() - t0:.1f} s')

    names = list(configs.MODELS)
    models, opts = {}, {}
    for i, name in enumerate(names):
        torch.manual_seed(args.seed + 1 + i)
        models[name] = Decoder(configs.MODELS[name])
        opts[name] = make_optimizer(models[name], args.lr)
    for name in names:
        log(f'{name}: {n_params(models[name])} parameters')

    ckpt_path = os.path.join(args.work, 'checkpoint.pt')
    start = 0
    if args.resume or args.only_export:
        ck = torch.load(ckpt_path)
        for name in names:
            models[name].load_state_dict(ck['models'][name])
            opts[name].load_state_dict(ck['opts'][name])
        start = ck['step']
        args.steps = ck.get('steps', args.steps)
        torch.set_rng_state(ck['rng'])
        log(f'resumed at step {start}')

    gen = torch.Generator().manual_seed(args.seed)
    for _ in range(start):  # replay the batch draws, so a resumed run sees the same batches
        torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=gen)
    steps = args.measure or args.steps
    train_seconds = {n: 0.0 for n in names}
    last = {}
    if not args.only_export:
        step = start
        t_train = time.time()
        while step < steps:
            offs = torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=gen).numpy()
            x = torch.from_numpy(np.stack([train_ids[o:o + args.seq] for o in offs]))
            y = torch.from_numpy(np.stack([train_ids[o + 1:o + args.seq + 1] for o in offs]))
            lr = lr_at(step, args)
            for name in names:
                ts = time.time()
                m, opt = models[name], opts[name]
                for g in opt.param_groups:
                    g['lr'] = lr
                logits = m(x)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
                opt.step()
                last[name] = loss.item()
                train_seconds[name] += time.time() - ts
            if step % 10 == 0:
                replan(step, start, t_train, args)
                steps = args.measure or args.steps
            if step % 20 == 0 or step == steps - 1:
                per = sum(train_seconds.values()) / (step - start + 1)
                losses = ' '.join(f'{n} {last[n]:.3f}' for n in names)
                log(f'step {step} lr {lr:.2e} {losses}  {per:.2f} s/step (all four)')
            if (step + 1) % 50 == 0 or step == steps - 1:
                torch.save({'step': step + 1, 'steps': steps, 'models': {n: models[n].state_dict() for n in names},
                            'opts': {n: opts[n].state_dict() for n in names}, 'rng': torch.get_rng_state()}, ckpt_path)
            step += 1
        if args.measure:
            for n in names:
                log(f'{n}: {train_seconds[n] / (steps - start):.3f} s/step')
            return

    # Export: weights as shipped (f16), then everything measured on those weights.
    summary = {'steps': args.steps, 'batch': args.batch, 'seq': args.seq,
               'tokens_seen': args.steps * args.batch * args.seq,
               'train_tokens': int(len(train_ids)), 'validation_tokens': int(len(val_ids)), 'models': {}}
    fixture_dir = os.path.join(args.out, 'test', 'fixtures', 'models')
    os.makedirs(fixture_dir, exist_ok=True)
    prompt = [enc.vocab['<s>']] + enc.encode(val_text[0])[:FIXTURE_TOKENS - 1]
    for name in names:
        m = models[name]
        export.rounded_to_f16(m)
        c = configs.MODELS[name]
        folder = os.path.join(args.out, 'models', name)
        os.makedirs(folder, exist_ok=True)
        export.write_safetensors(os.path.join(folder, 'model.safetensors'), export.checkpoint_tensors(m))
        export.write_json(os.path.join(folder, 'config.json'), c)
        export.write_json(os.path.join(folder, 'generation_config.json'),
                          {'bos_token_id': 0, 'eos_token_id': 1, 'do_sample': False, 'max_new_tokens': 64})
        bpe.save(enc, folder)
        vloss, vcount = validation_loss(m, val_ids, args.seq)
        sample_ids = greedy(m, [enc.vocab['<s>']] + enc.encode(SAMPLE_PROMPT), 48, enc.vocab['</s>'])
        sample = SAMPLE_PROMPT + enc.decode(sample_ids)
        # Fixture: logits of the f16 weights in float64 math, stored as f32.
        m64 = Decoder(c).double()
        m64.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
        with torch.no_grad():
            logits = m64(torch.tensor([prompt]))[0].float().numpy()  # [T, vocab]
        export.write_f32(os.path.join(fixture_dir, f'{name}.f32'), logits)
        export.write_json(os.path.join(fixture_dir, f'{name}.json'),
                          {'model': f'models/{name}', 'ids': prompt, 'logits': f'{name}.f32',
                           'shape': list(logits.shape),
                           'note': 'torch float64 forward of the shipped f16 weights (tools/train/train_all.py)'})
        info = {'parameters': n_params(m), 'validation_loss': vloss, 'validation_perplexity': math.exp(vloss),
                'validation_tokens_scored': vcount, 'last_train_loss': last.get(name),
                'train_seconds': train_seconds[name],
                'kv_bytes_per_token_f16': configs.kv_bytes_per_token_f16(c),
                'kv_values_per_token_per_layer': configs.kv_values_per_token_per_layer(c),
                'torch_greedy_sample': sample,
                'safetensors_bytes': os.path.getsize(os.path.join(folder, 'model.safetensors'))}
        summary['models'][name] = info
        log(f'{name}: validation loss {vloss:.4f} (ppl {math.exp(vloss):.2f}), sample: {sample!r}')

    # Tokenizer fixture: every validation line with the ids this script trains on (gzip JSON).
    lines = [line for text in val_text for line in text.split('\n')]
    with gzip.open(os.path.join(fixture_dir, 'kjv-validation-lines.json.gz'), 'wt') as f:
        json.dump({'lines': lines, 'ids': [enc.encode(line) for line in lines]}, f, separators=(',', ':'))
    export.write_json(os.path.join(args.out, 'models', 'training-summary.json'), summary)
    log(f'done in {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Writes models/<name>/README.md and the comparison table models/README.md from
models/training-summary.json (train_all.py) and, when present, models/webattn-measurements.json:
{ "adapter": "...", "models": { "<name>": { "decode_tok_s": 12.3, "prefill_tok_s": 45.6, "sample": "..." } } }
(written by measure_webattn.py from `webattn generate` runs).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import configs  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
VARIANT = {'kjv-mha': 'MHA', 'kjv-gqa': 'GQA', 'kjv-mqa': 'MQA', 'kjv-mla': 'MLA'}
RETRAIN = '/usr/bin/python3 tools/train/train_all.py'


def attention_line(c):
    if c['model_type'].startswith('deepseek'):
        return (f"MLA (deepseek_v2, dense MLP): {c['num_attention_heads']} heads, "
                f"q·k width {c['qk_nope_head_dim']} + rope {c['qk_rope_head_dim']}, v {c['v_head_dim']}; "
                f"the cache holds one latent row per token: "
                f"c_kv {c['kv_lora_rank']} + k_pe {c['qk_rope_head_dim']} values")
    kv = c['num_key_value_heads']
    return (f"{VARIANT_OF(c)}: {c['num_attention_heads']} query heads, {kv} KV head{'s' if kv > 1 else ''} of "
            f"{c['head_dim']} (K and V: {2 * kv * c['head_dim']} values per token per layer)")


def VARIANT_OF(c):
    kv, h = c['num_key_value_heads'], c['num_attention_heads']
    return 'MHA' if kv == h else 'MQA' if kv == 1 else 'GQA'


def main():
    summary = json.load(open(os.path.join(REPO, 'models', 'training-summary.json')))
    mpath = os.path.join(REPO, 'models', 'webattn-measurements.json')
    meas = json.load(open(mpath)) if os.path.exists(mpath) else {'models': {}}
    s = summary
    rows = []
    for name, info in s['models'].items():
        c = configs.MODELS[name]
        m = meas['models'].get(name, {})
        kvb = info['kv_bytes_per_token_f16']
        speed = f"{m['decode_tok_s']:.1f}" if 'decode_tok_s' in m else 'n/a'
        rows.append(f"| [{name}]({name}/) | {VARIANT[name]} | {info['parameters'] / 1e6:.2f} M | {kvb} B "
                    f"| {info['validation_loss']:.3f} / {info['validation_perplexity']:.1f} | {speed} |")
        sample_web = m.get('sample')
        layers = c['num_hidden_layers']
        facts = [
            ('architecture', f"`{c['model_type']}`, {layers} layers, hidden {c['hidden_size']}, "
                             f"SwiGLU MLP {c['intermediate_size']}, tied embeddings, RoPE θ {c['rope_theta']:g}"),
            ('attention', attention_line(c)),
            ('KV cache', f"{kvb} bytes per token in f16, all {layers} layers "
                         f"({configs.kv_values_per_token_per_layer(c)} values per token per layer)"),
            ('context', f"{c['max_position_embeddings']} tokens (trained on {s['seq']}-token windows)"),
            ('tokenizer', f"byte-level BPE, {c['vocab_size']} ids (`<s>` 0, `</s>` 1, 256 bytes, "
                          f"{c['vocab_size'] - 258} merges), trained on the training chapters"),
            ('weights', f"F16 safetensors, {info['safetensors_bytes'] / 2**20:.1f} MiB"),
        ]
        facts_table = '\n'.join(f'| {k} | {v} |' for k, v in facts)
        minutes = sum(v['train_seconds'] for v in s['models'].values()) / 60
        text = f"""# {name}: {'a' if name == 'kjv-gqa' else 'an'} {VARIANT[name]} toy model of the King James Bible

A {info['parameters'] / 1e6:.2f} M-parameter decoder trained from scratch by `tools/train/train_all.py`,
one of four that differ only in attention (models/README.md compares them). It writes KJV-like
text; it knows nothing else. Shipped so `webattn generate` and the demo work with no network.

| | |
|---|---|
{facts_table}

## Data and training

- Text: the King James Version from Debian's `bible-kjv` (`bible -f Gen1:1-Rev22:21`), verse
  references stripped, one chapter per document (`<s>` verses joined by newlines `</s>`).
- Validation: every 20th chapter (index % 20 == 7 over all 1189 chapters, 60 chapters,
  {s['validation_tokens']} tokens) is held out; the other {s['train_tokens']} tokens train.
- {s['steps']} AdamW steps (β 0.9/0.95, weight decay 0.1, lr 3e-3 with 30 warmup steps, constant,
  then a linear decay to 10% over the last quarter), batches of {s['batch']} × {s['seq']} tokens:
  {s['tokens_seen']:,} tokens seen. Same seeds, steps and batches as the other three models.
- Final training loss {info['last_train_loss']:.3f}; **validation loss {info['validation_loss']:.3f} nats/token,
  perplexity {info['validation_perplexity']:.1f}** (on every validation token, weights rounded to f16 as shipped).
- Retrain all four: `{RETRAIN} --steps {s['steps']}` (CPU, about {minutes:.0f} min of training on one contended core).

## Sample (greedy, prompt "In the beginning")

torch, f16 weights:

```
{info['torch_greedy_sample']}
```
"""
        if sample_web:
            text += f"""
`webattn generate --model models/{name} --prompt "In the beginning" --temperature 0 --max-new-tokens 48` (lavapipe):

```
{sample_web}
```
"""
        if m.get('sampled'):
            text += f"""
Sampled (`--temperature 0.8 --top-k 40 --seed 1 --max-new-tokens 64`, same adapter):

```
{m['sampled']}
```
"""
        if name == 'kjv-mla' and 'decode_tok_s' not in m:
            text += ("\nThe GPU forward of MLA models is not in webattn yet, "
                     "so this model has no webattn sample or speed here.\n")
        with open(os.path.join(REPO, 'models', name, 'README.md'), 'w') as f:
            f.write(text)

    header = ('| model | attention | parameters | KV bytes / token (f16) | val loss / ppl '
              '| decode tok/s (webattn) |')
    table = '\n'.join([header, '|---|---|---|---|---|---|'] + rows)
    readme = f"""# Shipped models

Four tiny decoders trained on the King James Bible, the same in everything but attention: same
data, tokenizer, width ({configs.COMMON['hidden_size']}), depth ({configs.COMMON['num_hidden_layers']} layers),
{configs.COMMON['num_attention_heads']} query heads, MLP, seeds, batches and steps ({s['steps']} steps,
{s['tokens_seen']:,} tokens). Side by side they show what each attention variant saves in KV cache
and what it costs in quality. `kjv-gqa` is the demo's default.

{table}

- KV bytes / token: f16, all layers. MHA caches 8 K and 8 V heads of 16, GQA 2, MQA 1; MLA one
  latent row per token (c_kv 32 + k_pe 16) shared by all 8 heads.
- val loss: nats per token on the 60 held-out chapters ({s['validation_tokens']} tokens); ppl = e^loss.
- decode tok/s: `webattn generate --model models/<name> --prompt "In the beginning" --temperature 0
  --max-new-tokens 48`, second run (warm pipeline cache), on lavapipe (`{meas.get('adapter')}`) on a
  shared, busy 2-core machine: noisy. At this size a decode step is dispatch overhead, not KV
  reads, so the variants decode at about the same speed; the KV column is what scales with
  context and model size.
- Retrain everything (tokenizer, four models, test fixtures): `{RETRAIN} --steps {s['steps']}`;
  then `/usr/bin/python3 tools/train/measure_webattn.py` (the webattn column and samples) and
  `/usr/bin/python3 tools/train/write_readmes.py` (these READMEs).
"""
    with open(os.path.join(REPO, 'models', 'README.md'), 'w') as f:
        f.write(readme)


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Runs `webattn generate` (greedy, 48 new tokens, prompt "In the beginning") on each shipped model
and writes models/webattn-measurements.json (sample text, prefill / decode tokens/s, adapter) for
write_readmes.py. Each model runs twice; the second (warm pipeline cache) is recorded. Adapter:
lavapipe unless WEBATTN_VK_ICD says otherwise. A model webattn refuses (MLA, before its GPU
forward exists) is recorded with the error instead.
"""
import json
import os
import re
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
MODELS = ['kjv-mha', 'kjv-gqa', 'kjv-mqa', 'kjv-mla']
PROMPT = 'In the beginning'


def main():
    env = dict(os.environ)
    env.setdefault('WEBATTN_VK_ICD', '/usr/share/vulkan/icd.d/lvp_icd.json')
    out = {'adapter': None, 'prompt': PROMPT, 'models': {}}
    for name in MODELS:
        cmd = ['node', 'bin/webattn.js', 'generate', '--model', f'models/{name}', '--prompt', PROMPT,
               '--temperature', '0', '--max-new-tokens', '48']
        # Run twice and keep the second: the first also compiles every pipeline (lavapipe JIT,
        # then Mesa's on-disk shader cache), which is start-up cost, not decode speed.
        for _ in range(2):
            r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        adapter = re.search(r'adapter: (.*)', r.stderr)
        if adapter:
            out['adapter'] = adapter.group(1).strip()
        stats = re.search(r'prefill (\d+) tokens at ([\d.]+) tok/s, decode (\d+) tokens at ([\d.]+) tok/s', r.stderr)
        if r.returncode != 0 or not stats:
            out['models'][name] = {'error': (r.stderr.strip().splitlines() or ['?'])[-1]}
        else:
            out['models'][name] = {'sample': PROMPT + r.stdout.rstrip('\n'), 'prefill_tok_s': float(stats.group(2)),
                                   'decode_tokens': int(stats.group(3)), 'decode_tok_s': float(stats.group(4))}
            # And a sampled continuation, which reads more like the text than greedy's loops.
            sampled = cmd[:-4] + ['--temperature', '0.8', '--top-k', '40', '--seed', '1', '--max-new-tokens', '64']
            r2 = subprocess.run(sampled, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
            if r2.returncode == 0:
                out['models'][name]['sampled'] = PROMPT + r2.stdout.rstrip('\n')
        print(name, json.dumps(out['models'][name]), flush=True)
    with open(os.path.join(REPO, 'models', 'webattn-measurements.json'), 'w') as f:
        json.dump(out, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()

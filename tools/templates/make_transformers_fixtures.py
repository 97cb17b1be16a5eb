#!/usr/bin/python3
"""Renders every real chat template in ../shared/realworld the way transformers'
`tokenizer.apply_chat_template(..., tokenize=False)` does, and stores the results as the fixture
test/tokenizer/templateConformance.test.ts compares webattn's renderer against.

Run from the repo root with Debian's jinja2 (apt-get install -y python3-jinja2):
    /usr/bin/python3 tools/templates/make_transformers_fixtures.py
It writes test/fixtures/chat-templates/transformers-renders.json. Nothing here runs at test time.

The jinja2 set-up is transformers' `_compile_jinja_template` (utils/chat_template_utils.py,
4.4x-4.5x): an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and loopcontrols;
`tojson` replaced by json.dumps (ensure_ascii=False, no HTML escaping, indent/separators/sort_keys);
globals raise_exception (TemplateError) and strftime_now (here on a fixed clock, 2026-12-01
10:20:30, so the stored text does not change with the day). The render variables are
transformers': messages, tools (None when absent), documents (None), add_generation_prompt, the
special tokens that exist, and the extra kwargs of the case. (The `{% generation %}` extension is
left out: no collected template uses it.)
"""
import datetime
import hashlib
import json
import os
import sys

import jinja2
from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REALWORLD = os.path.normpath(os.path.join(ROOT, '..', 'shared', 'realworld'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'chat-templates', 'transformers-renders.json')
NOW = datetime.datetime(2026, 12, 1, 10, 20, 30)


def compile_template(text):
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters['tojson'] = tojson
    env.globals['raise_exception'] = raise_exception
    env.globals['strftime_now'] = strftime_now
    return env.from_string(text)


def token_content(field):
    if isinstance(field, dict):
        return field.get('content')
    return field


def templates():
    """(id, path relative to realworld, template name or None, text, bos, eos) for every template."""
    found = []
    for dirpath, _dirs, names in sorted(os.walk(REALWORLD)):
        for name in sorted(names):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, REALWORLD)
            if name.endswith('.jinja'):
                with open(full, encoding='utf-8', newline='') as f:
                    text = f.read()
                config = os.path.join(dirpath, 'tokenizer_config.json')
                bos, eos = ('<s>', '</s>') if rel.startswith('chat-templates/') else (None, None)
                if os.path.exists(config):
                    with open(config, encoding='utf-8') as f:
                        c = json.load(f)
                    bos, eos = token_content(c.get('bos_token')), token_content(c.get('eos_token'))
                found.append((rel, rel, None, text, bos, eos))
            elif name in ('tokenizer_config.json', 'chat_template.json'):
                with open(full, encoding='utf-8', newline='') as f:
                    c = json.load(f)
                template = c.get('chat_template')
                if template is None:
                    continue
                bos, eos = token_content(c.get('bos_token')), token_content(c.get('eos_token'))
                if name == 'chat_template.json':
                    config = os.path.join(dirpath, 'tokenizer_config.json')
                    with open(config, encoding='utf-8') as f:
                        tc = json.load(f)
                    bos, eos = token_content(tc.get('bos_token')), token_content(tc.get('eos_token'))
                if isinstance(template, list):
                    for entry in template:
                        found.append((f"{rel}#{entry['name']}", rel, entry['name'], entry['template'], bos, eos))
                else:
                    found.append((rel, rel, None, template, bos, eos))
    return found


WEATHER_TOOL = {
    'type': 'function',
    'function': {
        'name': 'get_weather',
        'description': 'Get the current weather in a city',
        'parameters': {
            'type': 'object',
            'properties': {
                'city': {'type': 'string', 'description': 'The city, e.g. Paris'},
                'unit': {'type': 'string', 'enum': ['celsius', 'fahrenheit']},
            },
            'required': ['city'],
        },
    },
}

# Each case: (name, render variables other than the special tokens).
CASES = [
    ('one user turn', {'messages': [{'role': 'user', 'content': 'Hello!'}], 'add_generation_prompt': True}),
    (
        'system and two turns',
        {
            'messages': [
                {'role': 'system', 'content': 'You are terse.'},
                {'role': 'user', 'content': 'What is 2+2?'},
                {'role': 'assistant', 'content': '4'},
                {'role': 'user', 'content': 'And 3+3?  '},
            ],
            'add_generation_prompt': True,
        },
    ),
    (
        'finished chat, no generation prompt',
        {
            'messages': [
                {'role': 'user', 'content': 'Say "hi" in French — s\'il te plaît.'},
                {'role': 'assistant', 'content': 'Salut !'},
            ],
            'add_generation_prompt': False,
        },
    ),
    (
        'tools, a tool call and its result',
        {
            'messages': [
                {'role': 'user', 'content': 'Weather in Paris?'},
                {
                    'role': 'assistant',
                    'content': '',
                    'tool_calls': [
                        {
                            'id': 'call12345',
                            'type': 'function',
                            'function': {'name': 'get_weather', 'arguments': {'city': 'Paris', 'unit': 'celsius'}},
                        }
                    ],
                },
                {'role': 'tool', 'tool_call_id': 'call12345', 'name': 'get_weather', 'content': '{"temp": 21}'},
            ],
            'tools': [WEATHER_TOOL],
            'add_generation_prompt': True,
        },
    ),
    (
        'tools offered, plain question',
        {
            'messages': [{'role': 'user', 'content': 'Weather in Paris?'}],
            'tools': [WEATHER_TOOL],
            'add_generation_prompt': True,
        },
    ),
    (
        'a tool call with JSON-string arguments (as OpenAI sends them)',
        {
            'messages': [
                {'role': 'user', 'content': 'Weather in Paris?'},
                {
                    'role': 'assistant',
                    'content': None,
                    'tool_calls': [
                        {
                            'id': 'call12345',
                            'type': 'function',
                            'function': {'name': 'get_weather', 'arguments': '{"city": "Paris"}'},
                        }
                    ],
                },
                {'role': 'tool', 'tool_call_id': 'call12345', 'name': 'get_weather', 'content': '21 C'},
            ],
            'tools': [WEATHER_TOOL],
            'add_generation_prompt': True,
        },
    ),
    (
        'thinking disabled',
        {
            'messages': [{'role': 'user', 'content': 'Hi'}],
            'add_generation_prompt': True,
            'enable_thinking': False,
        },
    ),
    (
        'content as a list of parts',
        {
            'messages': [{'role': 'user', 'content': [{'type': 'text', 'text': 'Describe this.'}]}],
            'add_generation_prompt': True,
        },
    ),
    # What webattn turns the case above into for a template that takes text only (vLLM's "string" format).
    (
        'content as the string its parts join to',
        {'messages': [{'role': 'user', 'content': 'Describe this.'}], 'add_generation_prompt': True},
    ),
]


def render(text, bos, eos, variables):
    values = {'tools': None, 'documents': None, **variables}
    if bos is not None:
        values['bos_token'] = bos
    if eos is not None:
        values['eos_token'] = eos
    try:
        return {'text': compile_template(text).render(**values)}
    except Exception as e:  # noqa: BLE001 - every failure is part of the record
        return {'error': f'{type(e).__name__}: {e}'}


def main():
    if not os.path.isdir(REALWORLD):
        sys.exit(f'{REALWORLD} not found')
    out = {
        'about': 'transformers-style jinja2 renders of ../shared/realworld chat templates; '
        'made by tools/templates/make_transformers_fixtures.py',
        'jinja2': jinja2.__version__,
        'now': NOW.isoformat(),
        'templates': [],
    }
    for tid, rel, name, text, bos, eos in templates():
        entry = {
            'id': tid,
            'path': rel,
            'name': name,
            'sha256': hashlib.sha256(text.encode('utf-8')).hexdigest(),
            'bos_token': bos,
            'eos_token': eos,
            'cases': [],
        }
        for case, variables in CASES:
            entry['cases'].append({'case': case, 'variables': variables, **render(text, bos, eos, variables)})
        out['templates'].append(entry)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w', encoding='utf-8') as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write('\n')
    n = sum(len(t['cases']) for t in out['templates'])
    errors = sum(1 for t in out['templates'] for c in t['cases'] if 'error' in c)
    print(f"{len(out['templates'])} templates, {n} cases ({errors} raise in jinja2) -> {os.path.relpath(OUT, ROOT)}")


if __name__ == '__main__':
    main()

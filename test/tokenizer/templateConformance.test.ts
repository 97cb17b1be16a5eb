/**
 * Every real chat template in ../shared/realworld, rendered by webattn and compared byte for byte
 * with what transformers' jinja2 set-up renders (stored in test/fixtures/chat-templates by
 * tools/templates/make_transformers_fixtures.py; regenerate with that script, never at test time).
 *
 * KNOWN_DIFFERENCES lists every case that does not match, with the reason. The test fails when
 * a case leaves the list (it matches now: delete its entry) as much as when a new one joins it.
 * Where jinja2 raises, webattn must raise too, unless the case is listed.
 *
 * One deliberate difference is checked rather than listed: content given as a list of text parts,
 * for a template that takes text only, is joined into a string first (vLLM's "string" content
 * format), so it must render as the fixture's case with that string as content; jinja2 would
 * print the list's Python repr or raise a TypeError.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyChatTemplate, detectContentFormat, type ChatMessage } from '../../src/tokenizer/chatTemplate';

const REALWORLD = join(__dirname, '..', '..', '..', 'shared', 'realworld');
const FIXTURE = join(__dirname, '..', 'fixtures', 'chat-templates', 'transformers-renders.json');

interface Case {
  case: string;
  variables: { messages: ChatMessage[]; add_generation_prompt: boolean; [k: string]: unknown };
  text?: string;
  error?: string;
}
interface TemplateEntry {
  id: string;
  path: string;
  name: string | null;
  sha256: string;
  bos_token: string | null;
  eos_token: string | null;
  cases: Case[];
}
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { now: string; templates: TemplateEntry[] };

/** `<template id> | <case>` → why webattn's text differs from transformers' (or renders where jinja2 raises). */
const INTEGER_KEYS = '@huggingface/jinja refuses integer dict keys ({0: 0, 512: 128}): listed in the README';
const DICT_PLUS_STRING =
  "string + dict concatenates the dict's JSON (jinja2 raises a TypeError): the template was written for " +
  'OpenAI-style JSON-string arguments, and prints them so';
const KNOWN_DIFFERENCES: Record<string, string> = {
  'DeepSeek-R1/tokenizer_config.json | tools, a tool call and its result': DICT_PLUS_STRING,
  'chat-templates/ByteDance-Seed-OSS.jinja | one user turn': INTEGER_KEYS,
  'chat-templates/ByteDance-Seed-OSS.jinja | system and two turns': INTEGER_KEYS,
  'chat-templates/ByteDance-Seed-OSS.jinja | finished chat, no generation prompt': INTEGER_KEYS,
  'chat-templates/ByteDance-Seed-OSS.jinja | tools, a tool call and its result': INTEGER_KEYS,
  'chat-templates/ByteDance-Seed-OSS.jinja | tools offered, plain question': INTEGER_KEYS,
  'chat-templates/ByteDance-Seed-OSS.jinja | thinking disabled': INTEGER_KEYS,
  'chat-templates/ByteDance-Seed-OSS.jinja | content as a list of parts': INTEGER_KEYS,
  'chat-templates/ByteDance-Seed-OSS.jinja | content as the string its parts join to': INTEGER_KEYS,
  'chat-templates/deepseek-ai-DeepSeek-V3.1.jinja | tools, a tool call and its result': DICT_PLUS_STRING,
  'chat-templates/meetkai-functionary-medium-v3.1.jinja | tools, a tool call and its result': DICT_PLUS_STRING,
  'chat-templates/meetkai-functionary-medium-v3.2.jinja | tools, a tool call and its result': DICT_PLUS_STRING,
};

function templateText(t: TemplateEntry): string {
  const raw = readFileSync(join(REALWORLD, t.path), 'utf8');
  if (t.path.endsWith('.jinja')) return raw;
  const value = (JSON.parse(raw) as { chat_template: unknown }).chat_template;
  if (typeof value === 'string') return value;
  return (value as { name: string; template: string }[]).find((x) => x.name === t.name)!.template;
}

// The fixture's clock, 2026-12-01T10:20:30, as local time (the renderer reads local fields, like Python's naive now()).
const [date, time] = fixture.now.split('T');
const [y, mo, d] = date.split('-').map(Number);
const [h, mi, s] = time.split(':').map(Number);
const now = () => new Date(y, mo - 1, d, h, mi, s);

function render(t: TemplateEntry, text: string, c: Case): { text?: string; error?: string } {
  const { messages, add_generation_prompt, ...extra } = c.variables;
  try {
    return {
      text: applyChatTemplate(text, messages, {
        addGenerationPrompt: add_generation_prompt,
        bosToken: t.bos_token ?? undefined,
        eosToken: t.eos_token ?? undefined,
        extra,
        now,
      }),
    };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe.skipIf(!existsSync(REALWORLD))('chat templates of real repos render as transformers renders them', () => {
  it('the fixture is for the templates that are there now', () => {
    for (const t of fixture.templates) {
      expect(createHash('sha256').update(templateText(t), 'utf8').digest('hex'), t.id).toBe(t.sha256);
    }
  });

  it('every case matches, except the known differences', () => {
    const differing: string[] = [];
    let matched = 0;
    for (const t of fixture.templates) {
      const text = templateText(t);
      const textOnly = detectContentFormat(text) === 'string';
      for (const c of t.cases) {
        const key = `${t.id} | ${c.case}`;
        const joined = t.cases.find((x) => x.case === 'content as the string its parts join to')!;
        const want = c.case === 'content as a list of parts' && textOnly ? joined : c;
        const got = render(t, text, c);
        const same = want.error !== undefined ? got.error !== undefined : got.text === want.text;
        if (same) matched++;
        else differing.push(key);
        if (!same && process.env.SHOW_TEMPLATE_DIFFS) {
          const show = (r: { text?: string; error?: string }) => r.error ?? JSON.stringify(r.text);
          console.log(`--- ${key}\n${show(want)}\n+++\n${show(got)}`);
        }
      }
    }
    console.log(`${matched} of ${matched + differing.length} cases render as transformers renders them`);
    expect(differing.sort()).toEqual(Object.keys(KNOWN_DIFFERENCES).sort());
  });

  it('gemma-3 and Mistral-Small read content parts themselves and get them as they are', () => {
    const ids = fixture.templates.filter((t) => detectContentFormat(templateText(t)) === 'parts').map((t) => t.id);
    const partsTemplates = [
      'gemma-3-1b-it/tokenizer_config.json',
      'chat-templates/Mistral-Small-3.2-24B-Instruct-2506.jinja',
    ];
    expect(ids).toEqual(expect.arrayContaining(partsTemplates));
  });
});

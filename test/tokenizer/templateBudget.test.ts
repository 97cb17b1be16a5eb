/**
 * Chat templates are code from the model repo. Each test here is a hostile template that, before
 * the render budget, crashed V8, froze the thread or handed the tokenizer tens of millions of
 * characters; now each ends with a ChatTemplateError naming the template and the limit.
 */
import { describe, expect, it } from 'vitest';
import {
  applyChatTemplate,
  ChatTemplateError,
  DEFAULT_RENDER_BUDGET,
  type ChatTemplateOptions,
} from '../../src/tokenizer/chatTemplate';
import { strftime } from '../../src/tokenizer/strftime';

const user = [{ role: 'user', content: 'Hi' }];

/** Renders `template` (list form, named "evil") and returns the error it must throw. */
function failure(template: string, opts: ChatTemplateOptions = {}): ChatTemplateError {
  const t0 = Date.now();
  try {
    applyChatTemplate([{ name: 'default', template }], user, opts);
  } catch (e) {
    expect(Date.now() - t0).toBeLessThan(DEFAULT_RENDER_BUDGET.maxMillis + 2000);
    expect(e).toBeInstanceOf(ChatTemplateError);
    expect((e as Error).message).toMatch(/^chat template "default" failed: /);
    return e as ChatTemplateError;
  }
  throw new Error('the template rendered');
}

describe('a chat template cannot crash or freeze the process', () => {
  it('range(10**9) is refused before anything is allocated (it killed V8, exit 133)', () => {
    const e = failure('{% for i in range(10**9) %}x{% endfor %}');
    expect(e.budgetLimit).toBe('maxRange');
    expect(e.message).toMatch(/range\(\) of 1000000000 items is more than 100000 \(budget\.maxRange\)/);
    expect(failure('{% for i in range(0, -10**9, -1) %}{% endfor %}').budgetLimit).toBe('maxRange');
  });

  it('nested loops end with a step budget error instead of running for hours', () => {
    const e = failure('{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}');
    expect(['maxSteps', 'maxOutputChars', 'maxMillis']).toContain(e.budgetLimit);
    const steps = failure('{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}', {
      budget: { maxSteps: 10_000 },
    });
    expect(steps.budgetLimit).toBe('maxSteps');
    expect(steps.message).toMatch(/rendering took more than 10000 steps \(budget\.maxSteps\)/);
  });

  it('a time budget stops slow rendering too', () => {
    const e = failure('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', {
      budget: { maxMillis: 50, maxSteps: 1e12 },
    });
    expect(e.budgetLimit).toBe('maxMillis');
  });

  it('39 M characters of output are refused, however they are made', () => {
    // Doubling a string: a few steps, exponential size.
    const doubling = failure('{% set s = "x" %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}{{ s }}');
    expect(doubling.budgetLimit).toBe('maxOutputChars');
    // Many small writes: 39 M characters from a loop of 3.9 M-character writes.
    const big = 'y'.repeat(3_900_000);
    const e = failure('{% for i in range(10) %}{{ big }}{% endfor %}', { extra: { big } });
    expect(e.budgetLimit).toBe('maxOutputChars');
    // A filter asked for a huge width.
    expect(failure('{{ "a\\nb" | indent(1000000000) }}').message).toMatch(/indent\(1000000000\) asks for more than/);
    expect(failure('{{ x | tojson(indent=100000000) }}', { extra: { x: [1] } }).budgetLimit).toBe('maxOutputChars');
    // String repetition, which the renderer adds, is checked before the string is made.
    expect(failure('{{ "ab" * 1000000000 }}').budgetLimit).toBe('maxOutputChars');
    expect(failure('{{ ([1] * 1000000000) | length }}').budgetLimit).toBe('maxItems');
  });

  it('lists that double are refused at maxItems', () => {
    const e = failure('{% set l = [1] %}{% for i in range(40) %}{% set l = l + l %}{% endfor %}{{ l | length }}');
    expect(e.budgetLimit).toBe('maxItems');
  });

  it('a template of 2 MiB is refused before it is parsed', () => {
    expect(failure(`{{ "${'x'.repeat(2 * 1024 * 1024)}" }}`).message).toMatch(/the template itself is \d+ characters/);
  });

  it('unbounded recursion is an error, not a crash', () => {
    const e = failure('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}');
    expect(e.message).toMatch(/failed: /);
  });

  it('a tighter budget is honoured and a normal template renders under the default one', () => {
    const tight = failure('{% for i in range(20) %}ab{% endfor %}', { budget: { maxOutputChars: 10 } });
    expect(tight.budgetLimit).toBe('maxOutputChars');
    const plain = '{% for m in messages %}{{ m.role }}: {{ m.content }}{% endfor %}';
    expect(applyChatTemplate(plain, user)).toBe('user: Hi');
  });
});

describe('jinja2 behaviour the renderer adds', () => {
  const render = (t: string, extra: Record<string, unknown> = {}) => applyChatTemplate(t, [], { extra });

  it('prints Python reprs: True, None, lists and dicts', () => {
    expect(render('{{ true }} {{ none }} {{ [1, "a", true, none] }} {{ d }} {{ (1, 2) }}', { d: { a: 'b' } })).toBe(
      "True None [1, 'a', True, None] {'a': 'b'} (1, 2)",
    );
    expect(render('{{ "a" ~ none }}|{{ "a" ~ d }}', { d: { k: 1 } })).toBe("aNone|a{'k': 1}");
  });

  it('repeats strings and lists with *, as Python does', () => {
    expect(render('{{ "ab" * 3 }}|{{ 2 * "-" }}|{{ [1, 2] * 2 }}|{{ "x" * 0 }}')).toBe('ababab|--|[1, 2, 1, 2]|');
  });

  it('joins a dict to a string as JSON instead of "[object Map]"', () => {
    const call = { arguments: { city: 'Paris' } };
    expect(render("{{ 'args: ' + call.arguments }}", { call })).toBe('args: {"city": "Paris"}');
  });

  it('reads none | selectattr as empty, an undefined | trim as empty, and unpacks tuples in for', () => {
    expect(render('{{ none | selectattr("type", "equalto", "x") | list | length }}')).toBe('0');
    expect(render('[{{ missing | trim }}][{{ missing | length }}]')).toBe('[][0]');
    expect(render('{% for a, b in [("x", "X"), ("y", "Y")] %}{{ a }}{{ b }}{% endfor %}')).toBe('xXyY');
    expect(render('{% for x in missing %}{{ x }}{% endfor %}ok')).toBe('ok');
  });

  it('HTML-escapes what is joined to a |safe string, as markupsafe does', () => {
    expect(render('{{ "say "|safe + q }}', { q: '"hi" & <bye>' })).toBe('say &#34;hi&#34; &amp; &lt;bye&gt;');
  });

  it('passes tools and documents as None when not given, as transformers does', () => {
    expect(render('{{ tools is defined }} {{ tools is none }} {{ documents is none }}')).toBe('True True True');
  });

  it('joins the text parts of list content for templates that take text only', () => {
    const parts = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
    ];
    expect(applyChatTemplate('{{ messages[0].content }}', parts)).toBe('a\nb');
    expect(applyChatTemplate('{% for p in messages[0].content %}<{{ p.text }}>{% endfor %}', parts)).toBe('<a><b>');
    const image = [{ role: 'user', content: [{ type: 'image', url: 'x' }] }];
    const textOnly = /part of type "image"; this template takes text only/;
    expect(() => applyChatTemplate('{{ messages[0].content }}', image)).toThrow(textOnly);
  });
});

describe('strftime_now', () => {
  // 2026-12-01 18:29:48.5 local time, a Tuesday.
  const d = new Date(2026, 11, 1, 18, 29, 48, 500);

  it('uses English names whatever the locale, with the full code set', () => {
    expect(strftime(d, '%d %b %Y')).toBe('01 Dec 2026');
    expect(strftime(d, '%B %d, %Y')).toBe('December 01, 2026');
    expect(strftime(d, '%a %A %h %c')).toBe('Tue Tuesday Dec Tue Dec  1 18:29:48 2026');
    expect(strftime(d, '%y %m %e %-d %H %I %p %M %S %f')).toBe('26 12  1 1 18 06 PM 29 48 500000');
    expect(strftime(d, '%j %U %W %V %G %u %w')).toBe('335 48 48 49 2026 2 2');
    expect(strftime(d, '%D %F %T %R %r')).toBe('12/01/26 2026-12-01 18:29:48 18:29 06:29:48 PM');
    expect(strftime(d, '%x %X')).toBe('12/01/26 18:29:48');
    expect(strftime(d, '%z%Z|%%|%Q')).toBe('|%|%Q');
    // ISO week-numbering year differs from the calendar year around New Year.
    expect(strftime(new Date(2027, 0, 1), '%G-W%V-%u')).toBe('2026-W53-5');
  });

  it('is what templates get, on the clock given', () => {
    const llama = '{{ strftime_now("%d %b %Y") }}';
    expect(applyChatTemplate(llama, [], { now: () => d })).toBe('01 Dec 2026');
  });

  it('matches Python in another locale too (Llama-3.2 printed "01 Dez 2026" under German)', () => {
    const original = Intl.DateTimeFormat;
    // Any locale-dependent formatting would now produce German month names.
    const german = ((_locale?: string | string[], options?: Intl.DateTimeFormatOptions) =>
      new original('de-DE', options)) as unknown as typeof Intl.DateTimeFormat;
    Intl.DateTimeFormat = german;
    try {
      expect(applyChatTemplate('{{ strftime_now("%d %b %Y") }}', [], { now: () => d })).toBe('01 Dec 2026');
    } finally {
      Intl.DateTimeFormat = original;
    }
  });
});

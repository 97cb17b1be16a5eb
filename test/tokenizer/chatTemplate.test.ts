import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyChatTemplate, ChatTemplateError, selectChatTemplate } from '../../src/tokenizer/chatTemplate';

// Real chat templates, copied from the models' tokenizer_config.json `chat_template` into
// test/fixtures/chat-templates (verbatim: their lines are as long as the models ship them).
const template = (name: string) =>
  readFileSync(join(__dirname, '..', 'fixtures', 'chat-templates', `${name}.jinja`), 'utf8');

// Qwen/Qwen2.5-*-Instruct (ChatML with a default system prompt and tool calls).
const QWEN25 = template('Qwen2.5-Instruct');

// HuggingFaceTB/SmolLM2-*-Instruct.
const SMOLLM2 = template('SmolLM2-Instruct');

// meta-llama/Meta-Llama-3-8B-Instruct (bos_token written by the template, contents trimmed).
const LLAMA3 = template('Meta-Llama-3-8B-Instruct');

// google/gemma-7b-it (no system role, strict alternation, 'model' for the assistant).
const GEMMA = template('gemma-7b-it');

const QWEN_SYSTEM =
  '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n';

describe('applyChatTemplate: real templates', () => {
  it('Qwen2.5 adds its default system prompt and the generation prompt', () => {
    expect(applyChatTemplate(QWEN25, [{ role: 'user', content: 'Hello' }], { addGenerationPrompt: true })).toBe(
      QWEN_SYSTEM + '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(applyChatTemplate(QWEN25, [{ role: 'user', content: 'Hello' }])).toBe(
      QWEN_SYSTEM + '<|im_start|>user\nHello<|im_end|>\n',
    );
  });

  it('Qwen2.5 uses a given system prompt and renders a multi-turn chat', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: '2+2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'And 3+3?' },
    ];
    expect(applyChatTemplate(QWEN25, messages, { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n' +
        '<|im_start|>user\n2+2?<|im_end|>\n' +
        '<|im_start|>assistant\n4<|im_end|>\n' +
        '<|im_start|>user\nAnd 3+3?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('Qwen2.5 renders tools (extra variables), tool calls and tool responses', () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather now',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
      },
      { role: 'tool', content: '{"temp": 21}' },
    ];
    expect(applyChatTemplate(QWEN25, messages, { addGenerationPrompt: true, extra: { tools } })).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n' +
        'You may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "get_weather", "description": "Weather now", ' +
        '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n' +
        '</tools>\n\nFor each function call, return a json object with function name and arguments ' +
        'within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
        '<|im_start|>assistant\n' +
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('SmolLM2 adds its default system prompt only when none is given', () => {
    expect(applyChatTemplate(SMOLLM2, [{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(
      applyChatTemplate(SMOLLM2, [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'Hi' },
      ]),
    ).toBe('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
  });

  it('Llama-3 writes bos_token first and trims contents', () => {
    const messages = [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: '  Hi there \n' },
    ];
    expect(
      applyChatTemplate(LLAMA3, messages, {
        addGenerationPrompt: true,
        bosToken: '<|begin_of_text|>',
        eosToken: '<|eot_id|>',
      }),
    ).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    // Without a bos_token the template writes none.
    expect(applyChatTemplate(LLAMA3, [{ role: 'user', content: 'x' }])).toBe(
      '<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>',
    );
  });

  it('Gemma renders alternating turns with the model role', () => {
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello! ' },
      { role: 'user', content: 'How are you?' },
    ];
    expect(applyChatTemplate(GEMMA, messages, { addGenerationPrompt: true, bosToken: '<bos>' })).toBe(
      '<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n' +
        '<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n',
    );
  });

  it("Gemma's raise_exception becomes an error naming the template and carrying its message", () => {
    const system = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Hi' },
    ];
    expect(() => applyChatTemplate(GEMMA, system, { bosToken: '<bos>' })).toThrow(ChatTemplateError);
    expect(() => applyChatTemplate(GEMMA, system, { bosToken: '<bos>' })).toThrow(
      'chat template "chat_template" failed: System role not supported',
    );
    const twoUsers = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ];
    expect(() => applyChatTemplate([{ name: 'default', template: GEMMA }], twoUsers)).toThrow(
      'chat template "default" failed: Conversation roles must alternate user/assistant/user/assistant/...',
    );
  });
});

describe('applyChatTemplate: template forms and errors', () => {
  const list = [
    { name: 'tool_use', template: '{{ "tools:" + (tools | length | string) }}' },
    { name: 'default', template: SMOLLM2 },
  ];

  it("picks 'default' from the list form, or the named one", () => {
    expect(applyChatTemplate(list, [{ role: 'system', content: 'S' }])).toBe('<|im_start|>system\nS<|im_end|>\n');
    expect(applyChatTemplate(list, [], { templateName: 'tool_use', extra: { tools: [1, 2] } })).toBe('tools:2');
    expect(selectChatTemplate('abc')).toEqual({ name: 'chat_template', template: 'abc' });
  });

  it('a missing name is an error that lists the names there are', () => {
    expect(() => applyChatTemplate(list, [], { templateName: 'rag' })).toThrow(
      'chat template "rag" failed: no template named "rag"; the list holds: tool_use, default',
    );
    expect(() => applyChatTemplate([{ name: 'tool_use', template: 'x' }], [])).toThrow(/no template named "default"/);
  });

  it('a template that does not parse is an error naming it', () => {
    expect(() =>
      applyChatTemplate([{ name: 'default', template: '{% for m in messages %}{{ m.content }}' }], []),
    ).toThrow(/^chat template "default" failed: could not be parsed: /);
  });

  it('a template that fails while rendering is an error naming it', () => {
    expect(() => applyChatTemplate('{{ messages[0].content.nope() }}', [{ role: 'user', content: 'x' }])).toThrow(
      /^chat template "chat_template" failed: /,
    );
  });
});

/**
 * Tool calls read back from a model's reply, in the formats the chat templates we serve teach their
 * models (the same readings as vLLM's tool parsers):
 *
 *   hermes     Hermes, Qwen2.5, Qwen3, SmolLM3: `<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`,
 *              one block per call; the text before the first block is the message content. An
 *              unclosed last block (the reply ended inside it) is read too (vLLM's hermes parser).
 *   llama3     Llama 3.1 / 3.2 / 3.3 JSON tool calling: the whole reply is `{"name": "f", "parameters":
 *              {...}}` (or "arguments"), optionally after `<|python_tag|>`, several joined by `;`.
 *   mistral    Mistral v0.3: `[TOOL_CALLS] [{"name": "f", "arguments": {...}}, ...]`.
 * `<|python_tag|>` and `[TOOL_CALLS]` are special tokens that the engine's decoder leaves out, so a
 * reply usually holds just the JSON: a bare object or list is taken as calls only when every call
 * names one of the request's tools (plain JSON answers stay content). Not covered: Llama's built-in
 * tools written as code (`brave_search.call(query="...")`), pythonic lists (`[f(a=1)]`), DeepSeek's
 * and gpt-oss's own markup.
 *
 * A block that does not parse makes the whole reply content again, with no calls (vLLM does the same).
 * Worked example: 'Let me check.<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
 *   → content 'Let me check.', one call weather({"city":"Oslo"}).
 */

/** A call as OpenAI returns it: `arguments` is a JSON string. */
export interface ParsedToolCall {
  name: string;
  arguments: string;
}

export interface ParsedReply {
  /** The text that is not a call (null when nothing else was said). */
  content: string | null;
  calls: ParsedToolCall[];
}

const HERMES = /<tool_call>([\s\S]*?)<\/tool_call>|<tool_call>([\s\S]*)$/g;
const PYTHON_TAG = '<|python_tag|>';
const MISTRAL_TAG = '[TOOL_CALLS]';

/** {name, arguments | parameters} → a call, else null. */
function toCall(v: unknown): ParsedToolCall | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') return null;
  const args = o.arguments ?? o.parameters ?? {};
  if (typeof args === 'string') return { name: o.name, arguments: args };
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return null;
  return { name: o.name, arguments: JSON.stringify(args) };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * JSON values one after another, separated by whitespace and `;` (Llama's parallel calls), or
 * null if `text` is anything else. '{"a":1}; {"b":2}' → [{a:1}, {b:2}].
 */
function splitJsonValues(text: string): unknown[] | null {
  const out: unknown[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /[\s;]/.test(text[i])) i++;
    if (i >= text.length) break;
    if (text[i] !== '{' && text[i] !== '[') return null;
    // Find the end of this value: bracket depth outside strings.
    let depth = 0;
    let inString = false;
    let end = -1;
    for (let j = i; j < text.length; j++) {
      const c = text[j];
      if (inString) {
        if (c === '\\') j++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) {
          end = j + 1;
          break;
        }
      }
    }
    if (end < 0) return null;
    const v = parseJson(text.slice(i, end));
    if (v === undefined) return null;
    out.push(v);
    i = end;
  }
  return out;
}

/**
 * The calls in `text`. `toolNames`: the request's tools; bare JSON counts as calls only when every
 * call names one of them (null: any name, used when re-reading a reply already known to hold calls).
 */
export function parseToolCalls(text: string, toolNames: ReadonlySet<string> | null): ParsedReply {
  const none: ParsedReply = { content: text, calls: [] };
  if (text.includes('<tool_call>')) {
    const calls: ParsedToolCall[] = [];
    for (const m of text.matchAll(HERMES)) {
      const call = toCall(parseJson((m[1] ?? m[2]).trim()));
      if (!call) return none;
      calls.push(call);
    }
    const content = text.slice(0, text.indexOf('<tool_call>')).trim();
    return { content: content === '' ? null : content, calls };
  }
  let body = text.trim();
  let tagged = false;
  for (const tag of [PYTHON_TAG, MISTRAL_TAG]) {
    if (body.startsWith(tag)) {
      body = body.slice(tag.length).trim();
      tagged = true;
    }
  }
  if (!body.startsWith('{') && !body.startsWith('[')) return none;
  const values = splitJsonValues(body);
  if (!values || values.length === 0) return none;
  const calls: ParsedToolCall[] = [];
  for (const v of values.flatMap((x) => (Array.isArray(x) ? x : [x]))) {
    const call = toCall(v);
    if (!call) return none;
    if (!tagged && toolNames !== null && !toolNames.has(call.name)) return none;
    calls.push(call);
  }
  return calls.length ? { content: null, calls } : none;
}

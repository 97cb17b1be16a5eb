/**
 * The chat's conversation fitting (demo/conversation.ts), GPU-free: a request the engine refuses as
 * too long is sent again without the oldest user + assistant pair, and the conversation keeps what
 * was sent plus the reply.
 */
import { describe, expect, it } from 'vitest';
import { Conversation } from '../../demo/conversation';
import type { ChatMessage } from '../../src/tokenizer/chatTemplate';

const tooLong = Object.assign(new Error('prompt passes the context'), { name: 'EngineRequestError' });
const isTooLong = (err: unknown) => err === tooLong;

/** A fake engine whose context holds `limit` messages: longer requests are refused before any token. */
function engine(limit: number) {
  const sent: ChatMessage[][] = [];
  const request = async (messages: ChatMessage[]) => {
    sent.push(messages);
    if (messages.length > limit) throw tooLong;
    return `reply ${sent.length}`;
  };
  return { sent, request };
}

describe('Conversation', () => {
  it('keeps every turn while they fit', async () => {
    const c = new Conversation();
    const e = engine(100);
    expect(await c.send('a', e.request, isTooLong)).toEqual({ reply: 'reply 1', droppedTurns: 0 });
    await c.send('b', e.request, isTooLong);
    expect(e.sent[1].map((m) => m.content)).toEqual(['a', 'reply 1', 'b']);
    expect(c.turns.map((m) => `${m.role}:${m.content}`)).toEqual([
      'user:a',
      'assistant:reply 1',
      'user:b',
      'assistant:reply 2',
    ]);
  });

  it('drops the oldest pairs until the request fits, and says how many', async () => {
    const c = new Conversation();
    const roomy = engine(100);
    for (const t of ['a', 'b', 'c']) await c.send(t, roomy.request, isTooLong);
    const tight = engine(3); // one earlier pair + the new message
    const r = await c.send('d', tight.request, isTooLong);
    expect(r.droppedTurns).toBe(2);
    expect(tight.sent.map((m) => m.length)).toEqual([7, 5, 3]);
    expect(c.turns.map((m) => m.content)).toEqual(['c', 'reply 3', 'd', r.reply]);
  });

  it('rethrows other errors, and a too-long new message alone, leaving the conversation as it was', async () => {
    const c = new Conversation();
    await c.send('a', engine(100).request, isTooLong);
    const other = new Error('device lost');
    await expect(c.send('b', () => Promise.reject(other), isTooLong)).rejects.toBe(other);
    await expect(c.send('b', engine(0).request, isTooLong)).rejects.toBe(tooLong);
    expect(c.length).toBe(2);
    c.clear();
    expect(c.length).toBe(0);
  });
});

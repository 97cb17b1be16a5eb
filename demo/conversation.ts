/**
 * The chat's conversation, fitted to the model's context: each request sends the turns so far plus
 * the new user message. When the engine refuses that as longer than the context (before any token),
 * the oldest user + assistant pair is left out and the request sent again, until only the new message
 * is left. No DOM, no GPU: tested in plain Node (test/demo/conversation.test.ts).
 */
import type { ChatMessage } from '../src/tokenizer/chatTemplate';

export interface FittedReply {
  reply: string;
  /** Oldest turns (user + assistant pairs) left out so that the request fit. */
  droppedTurns: number;
}

export class Conversation {
  private messages: ChatMessage[] = [];

  /** Messages kept (user and assistant, in order). */
  get length(): number {
    return this.messages.length;
  }

  get turns(): readonly ChatMessage[] {
    return this.messages;
  }

  /**
   * Sends the history plus `text` as a user message through `request` (which resolves to the reply
   * text). While `request` throws an error that `tooLong` accepts and older turns remain, the oldest
   * pair is dropped and `request` runs again. On success the conversation is what was sent plus the
   * reply; on failure it is unchanged.
   */
  async send(
    text: string,
    request: (messages: ChatMessage[]) => Promise<string>,
    tooLong: (err: unknown) => boolean,
  ): Promise<FittedReply> {
    let history = this.messages;
    let droppedTurns = 0;
    for (;;) {
      const turn: ChatMessage[] = [...history, { role: 'user', content: text }];
      try {
        const reply = await request(turn);
        this.messages = [...turn, { role: 'assistant', content: reply }];
        return { reply, droppedTurns };
      } catch (err) {
        if (history.length === 0 || !tooLong(err)) throw err;
        history = history.slice(2); // the oldest user + assistant pair
        droppedTurns += 1;
      }
    }
  }

  clear(): void {
    this.messages = [];
  }
}

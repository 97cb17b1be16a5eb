// Chat in the browser: the model runs in a Web Worker (WebGPU there, the page stays responsive) and
// the reply streams back as OpenAI-style chunks. `model`: a Hugging Face repo id or a folder URL.
import { createWorkerEngine } from 'webattn';

export async function chat(model, question, onText, { max_tokens = 256, temperature = 0.7, ...engineOptions } = {}) {
  const engine = await createWorkerEngine({ model, engine: engineOptions }); // downloads are cached
  try {
    const stream = await engine.chat.completions.create({
      messages: [{ role: 'user', content: question }], stream: true, max_tokens, temperature,
    });
    for await (const chunk of stream) onText(chunk.choices[0]?.delta.content ?? '');
  } finally {
    engine.dispose();
  }
}
// chat('HuggingFaceTB/SmolLM2-135M-Instruct', 'What is a KV cache?', (t) => (reply.textContent += t));

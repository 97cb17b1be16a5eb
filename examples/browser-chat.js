// Chat in the browser: load a model by Hugging Face repo id or folder URL, stream the reply.
import { createContext, resolveSource, loadModelFiles, loadTokenizer, Transformer, generate } from 'webattn';

export async function chat(model, question, onText, { maxNewTokens = 256, temperature = 0.7, ...modelOptions } = {}) {
  const ctx = await createContext(); // navigator.gpu
  const files = await loadModelFiles(await resolveSource(model), { needTokenizer: true }); // cached after the first load
  const tokenizer = loadTokenizer(files.tokenizer, files.tokenizerConfig ?? {});
  const prompt = tokenizer.applyChatTemplate([{ role: 'user', content: question }], { addGenerationPrompt: true });
  const ids = tokenizer.encode(prompt, { addSpecialTokens: false });
  const llm = await Transformer.load(ctx, files, { ...modelOptions, maxSeqs: 1, maxContext: ids.length + maxNewTokens });
  try {
    for await (const text of generate(llm, tokenizer, ids, { maxNewTokens, temperature })) onText(text);
  } finally {
    llm.destroy();
    ctx.destroy();
  }
}
// chat('HuggingFaceTB/SmolLM2-135M-Instruct', 'What is a KV cache?', (t) => (reply.textContent += t));

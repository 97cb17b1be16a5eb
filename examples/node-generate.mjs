// node node-generate.mjs <model folder | URL | org/name> "<prompt>" [max new tokens]   (npm install webattn webgpu)
import { createContext, resolveSource, loadModelFiles, loadTokenizer, Transformer, generate } from 'webattn';

const [model = 'HuggingFaceTB/SmolLM2-135M-Instruct', prompt = 'A KV cache is', max = '64'] = process.argv.slice(2);
const ctx = await createContext(); // Dawn (the `webgpu` package); a software Vulkan driver when there is no GPU
// Downloads are cached in ~/.cache/webattn.
const files = await loadModelFiles(await resolveSource(model), { needTokenizer: true });
const tokenizer = loadTokenizer(files.tokenizer, files.tokenizerConfig ?? {});
const ids = tokenizer.encode(prompt);
// f32 KV: greedy output that does not depend on rounding ('f16', the default, halves the KV memory)
const llm = await Transformer.load(ctx, files, { maxSeqs: 1, maxContext: ids.length + Number(max), kvDtype: 'f32' });
const stats = {};
for await (const text of generate(llm, tokenizer, ids, { maxNewTokens: Number(max), temperature: 0 }, stats)) {
  process.stdout.write(text);
}
const tokensPerSecond = (stats.generatedTokens / stats.decodeMs) * 1000;
console.error(`\n${ctx.adapterDescription}: ${stats.generatedTokens} tokens, ${tokensPerSecond.toFixed(1)} tok/s`);
llm.destroy();
ctx.destroy();
process.exit(0); // a Dawn instance keeps Node's event loop alive

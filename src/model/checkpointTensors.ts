/**
 * The checkpoint's tensor names against the ones the config implies (expectedTensors), for what
 * checkWeights' per-tensor checks cannot see: tensors the config does not expect.
 *
 *   layers past num_hidden_layers   refused: config and file disagree on the depth (a 4-layer file
 *                                   under `num_hidden_layers: 3` would silently drop layer 3).
 *                                   DeepSeek-V3's multi-token-prediction layers
 *                                   (num_nextn_predict_layers after the last one) are ignored, as
 *                                   transformers ignores them.
 *   other unexpected tensors        a warning with their names, as transformers gives ("Some weights
 *                                   of the model checkpoint at ... were not used"); ignored silently,
 *                                   as transformers does: rotary_emb.inv_freq buffers and lm_head.weight
 *                                   of a model whose head is tied to the embedding.
 * Missing tensors are checkWeights' (each named with its expected shape).
 * Worked example: expected layers 0..2, file layers 0..3 → problem "4 tensors of layer 3, past
 * num_hidden_layers 3, ...".
 */

const LAYER = /^model\.layers\.(\d+)\./;
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;
/** Names listed in one message before "and N more". */
const LISTED = 8;

const listNames = (names: readonly string[]) =>
  names.slice(0, LISTED).join(', ') + (names.length > LISTED ? ` and ${names.length - LISTED} more` : '');

/**
 * Problems (refusals) and warnings for the tensors `names` holds that `expected` does not.
 * `config`: config.json, for num_nextn_predict_layers.
 */
export function unexpectedTensors(
  source: string,
  expected: ReadonlyMap<string, unknown>,
  names: readonly string[],
  config?: unknown,
): { problems: string[]; warnings: string[] } {
  let numLayers = 0;
  for (const name of expected.keys()) {
    const m = LAYER.exec(name);
    if (m) numLayers = Math.max(numLayers, Number(m[1]) + 1);
  }
  const nextn = (config as { num_nextn_predict_layers?: unknown } | null)?.num_nextn_predict_layers;
  const predictLayers = typeof nextn === 'number' && Number.isInteger(nextn) && nextn > 0 ? nextn : 0;
  const extraLayers = new Map<number, string[]>();
  const unused: string[] = [];
  for (const name of names) {
    if (expected.has(name) || IGNORED.test(name)) continue;
    if (name === 'lm_head.weight' && expected.has('model.embed_tokens.weight')) continue; // tied head
    const m = LAYER.exec(name);
    const layer = m ? Number(m[1]) : -1;
    if (layer >= numLayers + predictLayers) {
      const list = extraLayers.get(layer) ?? [];
      list.push(name);
      extraLayers.set(layer, list);
    } else if (layer < numLayers || predictLayers === 0) {
      unused.push(name);
    }
  }
  const problems: string[] = [];
  if (extraLayers.size > 0) {
    const layers = [...extraLayers.keys()].sort((a, b) => a - b);
    const count = [...extraLayers.values()].reduce((n, l) => n + l.length, 0);
    problems.push(
      `${source}: the checkpoint has ${count} tensors of layer${layers.length > 1 ? 's' : ''} ` +
        `${layers.join(', ')}, past num_hidden_layers ${numLayers} in config.json: the config and the ` +
        `weights disagree on the model's depth (${listNames(extraLayers.get(layers[0])!)})`,
    );
  }
  const warnings =
    unused.length > 0
      ? [`${source}: ${unused.length} tensors of the checkpoint are not used by this config: ${listNames(unused)}`]
      : [];
  return { problems, warnings };
}

/**
 * checkWeights' one call: warns (console.warn) about unused tensors and returns the refusals.
 * A safetensors folder only: a GGUF's tensors are renamed from the same file's metadata.
 */
export function checkUnexpectedTensors(
  files: { source: string; config: unknown; tensorNames(): string[] },
  expected: ReadonlyMap<string, unknown>,
): string[] {
  const { problems, warnings } = unexpectedTensors(files.source, expected, files.tensorNames(), files.config);
  for (const w of warnings) console.warn(`webattn: ${w}`);
  return problems;
}

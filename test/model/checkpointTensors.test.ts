/**
 * Config and checkpoint that disagree: `num_hidden_layers: 3` over a 4-layer file (an extra layer)
 * and 4 over a 3-layer file (missing tensors) are refused with the names; other tensors the config
 * does not use are warned about with their names, as transformers does. Real files from the
 * tiny-model writer, checked by checkWeights (no GPU).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { unexpectedTensors } from '../../src/model/checkpointTensors';
import { parseConfig } from '../../src/model/config';
import { expectedTensors } from '../../src/model/expectedTensors';
import { checkWeights } from '../../src/model/weights';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { writeSafetensors, type TensorToWrite } from '../../src/sources/safetensors';
import { configs, randomWeights, writeCheckpoint } from '../helpers/tinyModels';

const withLayers = (n: number) => ({ ...configs.llama, num_hidden_layers: n });

async function filesOf(dir: string) {
  return loadModelFiles(folderSource(dir), { needTokenizer: false });
}

afterEach(() => vi.restoreAllMocks());

describe('config against checkpoint', () => {
  it('num_hidden_layers 3 over a 4-layer file: refused, naming layer 3', async () => {
    const dir = writeCheckpoint(withLayers(4), randomWeights(parseConfig(withLayers(4))));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(withLayers(3)));
    const files = await filesOf(dir);
    const problems = checkWeights(files, expectedTensors(parseConfig(files.config)));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /the checkpoint has 9 tensors of layer 3, past num_hidden_layers 3 in config\.json: the config and the weights/,
    );
    expect(problems[0]).toContain('model.layers.3.input_layernorm.weight');
  });

  it('num_hidden_layers 4 over a 3-layer file: every missing tensor named', async () => {
    const dir = writeCheckpoint(withLayers(3), randomWeights(parseConfig(withLayers(3))));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(withLayers(4)));
    const files = await filesOf(dir);
    const problems = checkWeights(files, expectedTensors(parseConfig(files.config)));
    expect(problems).toHaveLength(9);
    for (const p of problems) expect(p).toMatch(/tensor "model\.layers\.3\.[\w.]+" is missing \(expected shape/);
  });

  it('unused tensors are warned about with their names; inv_freq and a tied lm_head are not', async () => {
    const config = { ...configs.qwen2 }; // tied embeddings
    const expected = expectedTensors(parseConfig(config));
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, data] of randomWeights(parseConfig(config)))
      tensors[name] = { dtype: 'F32', shape: expected.get(name)!, data };
    tensors['model.layers.0.self_attn.rotary_emb.inv_freq'] = { dtype: 'F32', shape: [4], data: new Float32Array(4) };
    const dir = mkdtempSync(join(tmpdir(), 'webattn-extra-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const files = await filesOf(dir);
    expect(checkWeights(files, expectedTensors(parseConfig(config)))).toEqual([]);
    expect(warn).not.toHaveBeenCalled();

    const names = [
      ...expectedTensors(parseConfig(config)).keys(),
      'lm_head.weight',
      'model.vision_tower.proj.weight',
      'model.layers.1.mlp.experts.0.weight',
    ];
    const got = unexpectedTensors('repo', expectedTensors(parseConfig(config)), names, config);
    expect(got.problems).toEqual([]);
    expect(got.warnings).toEqual([
      'repo: 2 tensors of the checkpoint are not used by this config: ' +
        'model.vision_tower.proj.weight, model.layers.1.mlp.experts.0.weight',
    ]);
  });

  it("DeepSeek-V3's multi-token-prediction layer after the last one is ignored, as transformers does", () => {
    const spec = parseConfig(configs.llama);
    const expected = expectedTensors(spec);
    const names = [...expected.keys(), 'model.layers.2.eh_proj.weight', 'model.layers.2.enorm.weight'];
    expect(unexpectedTensors('r', expected, names, { num_nextn_predict_layers: 1 })).toEqual({
      problems: [],
      warnings: [],
    });
    expect(unexpectedTensors('r', expected, names, {}).problems[0]).toMatch(
      /2 tensors of layer 2, past num_hidden_layers 2/,
    );
  });
});

/**
 * The project's GGUF writer (src/model/ggufWriter.ts) against llama.cpp's own files of the shipped
 * kjv-gqa (shared/realworld/gguf): F32 byte for byte what convert_hf_to_gguf.py wrote; F16, Q8_0 and
 * Q4_0 the same tensor types and bytes as llama-quantize's; and what it writes loads back through
 * ggufModelFiles as the folder it came from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { ggufModelFiles } from '../../src/model/ggufModelFiles';
import { sizeLabel, writeModelGguf } from '../../src/model/ggufWriter';
import { parseGguf } from '../../src/sources/gguf';
import { folderSource, loadModelFiles } from '../../src/sources/modelSource';
import { tokenizerFromModelFiles } from '../../src/tokenizer/tokenizer';

const GGUF = join(__dirname, '../../../shared/realworld/gguf');
const KJV = join(__dirname, '../../models/kjv-gqa');

describe.skipIf(!existsSync(GGUF))('writeModelGguf', () => {
  it("kjv-gqa F32: byte for byte llama.cpp convert_hf_to_gguf.py's file", async () => {
    const files = await loadModelFiles(folderSource(KJV), { needTokenizer: true });
    const got = writeModelGguf(files, { type: 'F32' });
    const want = new Uint8Array(readFileSync(join(GGUF, 'kjv-gqa-F32.gguf')));
    const g = parseGguf(got, 'written');
    const w = parseGguf(want, 'llama.cpp');
    expect([...g.metadata.keys()]).toEqual([...w.metadata.keys()]);
    for (const [k, v] of w.metadata) expect(g.metadata.get(k), k).toEqual(v);
    expect([...g.tensors.keys()]).toEqual([...w.tensors.keys()]);
    expect(got.length).toBe(want.length);
    let first = -1;
    for (let i = 0; i < got.length && first < 0; i++) if (got[i] !== want[i]) first = i;
    expect(first).toBe(-1);
  });

  for (const type of ['F16', 'Q8_0', 'Q4_0'] as const) {
    it(`kjv-gqa ${type}: the tensor types and bytes of llama-quantize's ${type} file`, async () => {
      const files = await loadModelFiles(folderSource(KJV), { needTokenizer: true });
      const g = parseGguf(writeModelGguf(files, { type }), 'written');
      const w = parseGguf(new Uint8Array(readFileSync(join(GGUF, `kjv-gqa-${type}.gguf`))), 'llama.cpp');
      expect(g.metadata.get('general.file_type')).toEqual(w.metadata.get('general.file_type'));
      expect(new Set(g.tensors.keys())).toEqual(new Set(w.tensors.keys()));
      for (const [name, t] of w.tensors) {
        const mine = g.tensors.get(name)!;
        expect([mine.type, mine.dims], name).toEqual([t.type, t.dims]);
        const same = Buffer.compare(g.bytes.subarray(mine.begin, mine.end), w.bytes.subarray(t.begin, t.end)) === 0;
        expect(same, `${type} ${name}`).toBe(true);
      }
    });
  }

  it('what it writes loads back as the folder: config, tokenizer and tensors', async () => {
    const folder = await loadModelFiles(folderSource(KJV), { needTokenizer: true });
    const bytes = writeModelGguf(folder, { type: 'F16' });
    const files = ggufModelFiles({ ...folder, config: null, tokenizer: null, gguf: parseGguf(bytes, 'kjv.gguf') });
    expect(parseConfig(files.config, 'gguf')).toEqual(parseConfig(folder.config, 'folder'));
    expect(tokenizerFromModelFiles(files).encode('In the beginning')).toEqual([0, 1169, 260, 1803, 1253]);
  });

  it('size labels as gguf-py writes them', () => {
    expect([sizeLabel(1_040_000), sizeLabel(260_000), sizeLabel(7_241_732_096), sizeLabel(135_000_000)]).toEqual([
      '1.0M',
      '260K',
      '7.2B',
      '135M',
    ]);
  });
});

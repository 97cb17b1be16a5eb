/**
 * The files the peers load, made from one checkpoint by the project's own exporters:
 *
 *   onnx/model.onnx        transformers.js (onnxExport.ts: f32, GroupQueryAttention)
 *   onnx/model_plain.onnx  the same with attention in plain ONNX ops (MatMul / Softmax)
 *   model-F32.gguf         wllama (src/model/ggufWriter.ts, what convert_hf_to_gguf.py writes)
 *   model-Q8_0.gguf        wllama's q8 row (Q8_0 blocks, the format webattn's q8 weights also use)
 *
 * No Node API: models.ts writes them into bench/e2e/models/<name>/ before `npm run bench:e2e` opens
 * its page, and the demo's bench page makes them in the page from the shipped checkpoint it serves
 * (so the static site carries no second copy of a model).
 */
import { writeModelGguf } from '../../src/model/ggufWriter';
import type { ModelFiles } from '../../src/sources/modelSource';
import { exportDecoderOnnx } from './onnxExport';

export const PEER_FILES = ['onnx/model.onnx', 'onnx/model_plain.onnx', 'model-F32.gguf', 'model-Q8_0.gguf'] as const;
export type PeerFile = (typeof PEER_FILES)[number];

/**
 * One peer file of the checkpoint in `files` (with its tokenizer: the GGUF carries it); `name` is the
 * GGUF's general.name.
 */
export function makePeerFile(files: ModelFiles, name: string, file: PeerFile): Uint8Array {
  switch (file) {
    case 'onnx/model.onnx':
      return exportDecoderOnnx(files, { attention: 'gqa' });
    case 'onnx/model_plain.onnx':
      return exportDecoderOnnx(files, { attention: 'plain' });
    case 'model-F32.gguf':
      return writeModelGguf(files, { type: 'F32', name });
    case 'model-Q8_0.gguf':
      return writeModelGguf(files, { type: 'Q8_0', name });
  }
}

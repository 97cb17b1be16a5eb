// Paged flash attention on your own GPUDevice and buffers (webattn/kernels): lay out the K/V pages,
// describe them with a page table, let FlashPrefill plan its work list, encode, submit, read back.
import { contextFromDevice, FlashPrefill, buildPageTable, attentionParams } from 'webattn/kernels';

/**
 * q f32 [Tq][numHeads][headDim]; k, v f32 [Tk][numKvHeads][headDim], the sequences one after the
 * other; seqs[i] = { qLen, kvLen }: sequence i's queries are its last qLen positions (causal).
 * Returns out f32 [Tq][numHeads][headDim].
 */
export async function pagedAttention(device, { q, k, v, numHeads, numKvHeads, headDim, seqs, pageSize = 16 }) {
  const ctx = contextFromDevice(device); // no new device: your device, its limits and features
  const groupSize = numHeads / numKvHeads; // query heads per K/V head
  const spec = { numKvHeads, groupSize, headDimQK: headDim, headDimV: headDim, pageSize, kvDtype: 'f32' };

  // Pages: sequence i owns ceil(kvLen / pageSize) pages, handed out back to front here to show that
  // a block table may list any physical pages. One page = [numKvHeads][pageSize][headDim] values.
  const blockTables = [];
  let numPages = 0;
  for (const s of seqs) {
    const n = Math.ceil(s.kvLen / pageSize);
    blockTables.push(Array.from({ length: n }, (_, i) => numPages + n - 1 - i));
    numPages += n;
  }
  const kPages = new Float32Array(numPages * numKvHeads * pageSize * headDim); // [page][kvHead][token][dim]
  const vPages = new Float32Array(kPages.length);
  let row = 0;
  seqs.forEach((s, i) => {
    for (let t = 0; t < s.kvLen; t++, row++) {
      const page = blockTables[i][Math.floor(t / pageSize)];
      for (let h = 0; h < numKvHeads; h++) {
        const dst = ((page * numKvHeads + h) * pageSize + (t % pageSize)) * headDim;
        const src = (row * numKvHeads + h) * headDim;
        kPages.set(k.subarray(src, src + headDim), dst);
        vPages.set(v.subarray(src, src + headDim), dst);
      }
    }
  });

  // Page table (FlashInfer's CSR form): qoIndptr, kvIndptr, kvPageIndices, kvLastPageLen.
  const seqPages = seqs.map((s, i) => ({ blockTable: blockTables[i], kvLen: s.kvLen, qLen: s.qLen }));
  const meta = buildPageTable(seqPages, pageSize);
  const prefill = await FlashPrefill.create(ctx, spec); // compiles the WGSL for this shape and device
  const plan = prefill.plan(meta); // plan.work: u32 [items][WORK_ITEM_U32], one per (sequence, row tile)

  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const buffer = (data, usage = STORAGE) => {
    const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const numQ = meta.qoIndptr[meta.numSeqs];
  const out = device.createBuffer({ size: numQ * numHeads * headDim * 4, usage: STORAGE }); // f32 [Tq][H][D]
  const lse = device.createBuffer({ size: Math.max(16, numQ * numHeads * 4), usage: STORAGE }); // f32 [Tq][H]
  const step = {
    qoIndptr: buffer(meta.qoIndptr),
    kvIndptr: buffer(meta.kvIndptr),
    kvPageIndices: buffer(meta.kvPageIndices),
    kvLastPageLen: buffer(meta.kvLastPageLen),
    params: buffer(
      attentionParams(meta.numSeqs, { scale: 1 / Math.sqrt(headDim), causal: true, window: 0 }),
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    ),
  };
  const pages = { kPages: buffer(kPages), vPages: buffer(vPages) };
  const bindGroup = prefill.bind({ q: buffer(q), pages, step, work: buffer(plan.work), out, lse });

  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  prefill.encode(pass, bindGroup, plan.numWorkItems); // in your pass, next to your own kernels
  pass.end();
  const readback = device.createBuffer({ size: out.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  encoder.copyBufferToBuffer(out, 0, readback, 0, out.size);
  device.queue.submit([encoder.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const result = new Float32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  return result;
}

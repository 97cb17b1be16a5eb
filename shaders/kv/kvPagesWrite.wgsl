// kvPagesWrite: the page buffers kvAppend.wgsl writes f32 / f16 rows into (the layout is in
// kvAppend.wgsl): one buffer per K and V, the one being written of a split pool
// (kvPagesWriteRange.wgsl says which pages it holds).
// Bindings: 3 kPages read_write Word4 [pages][NUM_KV_HEADS][PAGE_SIZE][D4],
//           4 vPages read_write Word4 [pages][NUM_KV_HEADS][PAGE_SIZE][DV4].
// storeK / storeV(i, w): writes Word4 number i of the bound buffer.
// requires: Word4
// provides: kPages, vPages, storeK, storeV

@group(0) @binding(3) var<storage, read_write> kPages: array<Word4>;
@group(0) @binding(4) var<storage, read_write> vPages: array<Word4>;

fn storeK(i: u32, w: Word4) { kPages[i] = w; }
fn storeV(i: u32, w: Word4) { vPages[i] = w; }

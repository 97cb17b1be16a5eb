// kvPagesWrite: the page buffers kvAppend.wgsl writes, for a pool of one buffer per K and V (the
// layout is in kvAppend.wgsl). kvPagesWriteSplit.wgsl gives the same functions over a split pool.
// Bindings: 3 kPages read_write Word4 [numPages][NUM_KV_HEADS][PAGE_SIZE][D4],
//           4 vPages read_write Word4 [numPages][NUM_KV_HEADS][PAGE_SIZE][DV4].
// storeK / storeV(i, w): writes Word4 number i of the pool (counted over all its pages).
// requires: Word4
// provides: kPages, vPages, storeK, storeV

@group(0) @binding(3) var<storage, read_write> kPages: array<Word4>;
@group(0) @binding(4) var<storage, read_write> vPages: array<Word4>;

fn storeK(i: u32, w: Word4) { kPages[i] = w; }
fn storeV(i: u32, w: Word4) { vPages[i] = w; }

// kvPagesWriteQuant: the page buffers kvAppendQuant.wgsl writes q8 / q4 rows into (the layouts are
// in shaders/attention/kvPagesQ8.wgsl, kvPagesQ4.wgsl): one buffer per K and V, the one being written
// of a split pool (kvPagesWriteRange.wgsl says which pages it holds).
// Bindings: 3 kPages read_write u32 [pages][K_PAGE_WORDS], 4 vPages read_write u32 [pages][V_PAGE_WORDS]
//   (atomic: two threads write the two f16 scale halves of one word).
// storeWord(isV, i, w): writes u32 word i of the bound K (isV false) or V buffer;
// storeHalf(isV, i, n, h): writes f16 bits h into half n % 2 of word i, leaving the other half as it is.
// requires: (nothing)
// provides: kPages, vPages, storeWord, storeHalf

@group(0) @binding(3) var<storage, read_write> kPages: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> vPages: array<atomic<u32>>;

fn storeWord(isV: bool, i: u32, w: u32) {
  if (isV) { atomicStore(&vPages[i], w); } else { atomicStore(&kPages[i], w); }
}

fn storeHalf(isV: bool, i: u32, n: u32, h: u32) {
  let shift = 16u * (n & 1u);
  if (isV) {
    atomicAnd(&vPages[i], ~(0xffffu << shift));
    atomicOr(&vPages[i], h << shift);
  } else {
    atomicAnd(&kPages[i], ~(0xffffu << shift));
    atomicOr(&kPages[i], h << shift);
  }
}

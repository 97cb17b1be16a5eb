// kvPagesOneBuffer: where a KV page lives when a layer's pool is one buffer per K and V (every pool
// that fits one storage binding). One of the two KV page layout snippets (kvPagesSplit.wgsl is the
// other); a kernel that reads KV pages is composed with one of them and one row reader per format
// (kvPagesFloat / kvPagesQ8 / kvPagesQ4.wgsl), which declares KvWord (what the buffers hold) and
// reads rows through kvPageAt, kLoad and vLoad.
// Page p is page p of the buffer (buffer 0). Page layouts are the row readers'.
// Bindings: 1 kPages read KvWord [numPages][K page], 2 vPages read KvWord [numPages][V page]
//   (MLA: vPages is the K buffer).
// requires: KvWord
// provides: kPages, vPages, KvPageAt, kvPageAt, kLoad, vLoad

@group(0) @binding(1) var<storage, read> kPages: array<KvWord>;
@group(0) @binding(2) var<storage, read> vPages: array<KvWord>;

struct KvPageAt {
  buf: u32,  // which buffer holds the page (here always 0; the compiler folds it away)
  page: u32, // its index in that buffer
}

fn kvPageAt(p: u32) -> KvPageAt { return KvPageAt(0u, p); }

// KvWord i of buffer b of K / V.
fn kLoad(b: u32, i: u32) -> KvWord { return kPages[i]; }
fn vLoad(b: u32, i: u32) -> KvWord { return vPages[i]; }

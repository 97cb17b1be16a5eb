// workItem snippet: the work list of the attention kernels that walk it (flashPrefill through
// attentionTile.wgsl, splitKvDecode, mlaDecode), one item per workgroup x. Built on the host by the
// kernel's plan() (src/kernels/flashPrefill.ts, splitKvDecode.ts), WORK_ITEM_U32 = 5 words each.
// One workgroup's job: rows [rowStart, rowStart + BLOCK_M) of sequence seq against keys
// [kvStart, kvEnd); slot is where a split-KV decode writes its partial (unused by flashPrefill).
// Binding:
//   7  work  read  WorkItem [numWorkItems]
// requires: (nothing)
// provides: WorkItem, work
struct WorkItem { seq: u32, rowStart: u32, kvStart: u32, kvEnd: u32, slot: u32 }

@group(0) @binding(7) var<storage, read> work: array<WorkItem>;

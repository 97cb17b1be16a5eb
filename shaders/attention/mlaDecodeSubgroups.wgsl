// mlaDecode lane snippet, subgroup variant (adapters with `subgroups` and one fixed subgroup size,
// SG_SIZE): a value the whole workgroup needs at the same address is read by SG_SIZE lanes at a
// time, one word each, and handed around the subgroup with subgroupShuffle. On lavapipe a load
// inside a loop is a per-lane bounds-checked gather even when every lane reads the same address,
// while a shuffle with a constant lane is one register permute: 16 heads' q words cost 2 loads
// and 16 shuffles per lane instead of 16 loads. Needs `enable subgroups;`, which sources.ts puts
// before every part (directives precede all declarations, the word4 snippet's included).
// requires: (nothing)
// provides: LaneIds, subgroupLane, fromLane4, fromLane, lanesMax, lanesAdd

struct LaneIds {
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_invocation_id) sub: u32,
}

fn subgroupLane(ids: LaneIds) -> u32 { return ids.sub; }
fn fromLane4(x: vec4<f32>, lane: u32) -> vec4<f32> { return subgroupShuffle(x, lane); }
fn fromLane(x: f32, lane: u32) -> f32 { return subgroupShuffle(x, lane); }
fn lanesMax(x: f32) -> f32 { return subgroupMax(x); }
fn lanesAdd(x: f32) -> f32 { return subgroupAdd(x); }

// mlaDecode lane snippet, plain variant (no subgroups, or a subgroup size that varies): SG_SIZE
// is 1, every lane reads every word itself and the "shuffles" are the identity.
// requires: (nothing)
// provides: LaneIds, subgroupLane, fromLane4, fromLane, lanesMax, lanesAdd
struct LaneIds {
  @builtin(local_invocation_index) lid: u32,
}

fn subgroupLane(ids: LaneIds) -> u32 { return 0u; }
fn fromLane4(x: vec4<f32>, lane: u32) -> vec4<f32> { return x; }
fn fromLane(x: f32, lane: u32) -> f32 { return x; }
fn lanesMax(x: f32) -> f32 { return x; }
fn lanesAdd(x: f32) -> f32 { return x; }

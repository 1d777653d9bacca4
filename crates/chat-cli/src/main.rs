//! `axp-chat`: the AXP Digital chat terminal tool (work in progress).

fn main() {}

"""Read-model projections. Transport-agnostic: a runner feeds them events with positions."""

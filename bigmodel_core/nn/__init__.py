"""Neural-network building blocks shared by the engine and the exported scripts."""

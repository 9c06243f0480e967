"""Looking inside: probes of a trained model (feature maps, gates, gradients) and the concept demos."""

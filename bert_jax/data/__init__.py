"""Text to token ids, and the host-side data pipelines that feed the model."""

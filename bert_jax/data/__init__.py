"""Host-side data: tokenizers, corpus preparation, and the tf.data pretraining pipeline."""

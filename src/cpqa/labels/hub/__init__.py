"""Hub backends for GPU users (transformers, FunASR). Imported only when a recipe names them."""

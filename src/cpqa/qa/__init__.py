"""Contextual paralinguistic QA: versioned prompts and QA types (`prompts/`), the `qa` stage
(generation with per-clip filters, `generate`) and the `qa_dataset` stage (filters over the whole
set, `dataset`)."""

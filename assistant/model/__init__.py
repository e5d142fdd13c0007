"""The language model behind a small interface, shared by everything that asks it something (the drafter, the
relationship summaries and checks, the eval's judge): the client for any OpenAI-compatible server (``client``),
the prompt templates (``templates``), fitting history into a prompt's token budget (``budget``, ``history``) and
the packaged local model's server (``local_model``). It knows nothing of turns, people or brands."""

"""Sharing culture models the way the field does: push adapters, training sets and results to the
Hugging Face Hub (`culturellm push`, `run --push-to`), and load published ones (`hf:ORG/NAME`).

Modules: `hubrepo` (repo ids, token, Hub errors as one line), `cards` (model and dataset cards),
`push` (what a push uploads, one commit), `runpush` (the run's push stage), `config` (`[push]`),
`cli` (`culturellm push`)."""

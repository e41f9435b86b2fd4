"""Sharing culture models the way the field does: push adapters, training sets and results to the
Hugging Face Hub (`culturellm push`, `run --push-to`), and load published ones (`hf:ORG/NAME`)."""

from culturellm.share.hubrepo import check_repo_id
from culturellm.share.push import PushPlan, push

__all__ = ["PushPlan", "check_repo_id", "push"]

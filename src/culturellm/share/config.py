"""`[push]` of a run TOML (and `culturellm run --push-to ORG`): publish a run's culture models."""

from __future__ import annotations

from pydantic import Field, field_validator

from culturellm.settings import StageConfig


class PushConfig(StageConfig):
    """Where a run publishes its culture models and CultureLLM-One after evaluation (nothing when `to`
    is unset). Repositories are ORG/<run name>-<culture> (models) and ORG/<run name>-<culture>-data
    (training sets, with `datasets = true`)."""

    to: str | None = Field(None, description="Hub organisation or user to push to (None: no push)")
    private: bool = Field(False, description="create the repositories private")
    revision: str = Field("main", description="branch to commit to")
    datasets: bool = Field(True, description="also push each training set as a dataset repository")

    @field_validator("to")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        from culturellm.share.hubrepo import is_org

        if value is not None and not is_org(value):
            raise ValueError("not a Hub organisation or user name (letters, digits, '-', '_', '.'; no '..')")
        return value

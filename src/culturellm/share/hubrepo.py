"""Hub repositories culturellm pushes to: the repo id rule, the token, and server faults as one line.

The token comes from `HF_TOKEN` or the `huggingface_hub` login (`hf auth login`), through
`huggingface_hub.get_token()`; culturellm never writes it to disk or to a log, and messages never
show it. A refused request (401, 403, 409) is the user's to fix: a `CultureLLMError` (exit code 2);
a server fault (5xx) or a dropped connection is a `ServerError` (exit code 1): run the command again.
A push is one commit, so a failed one changes nothing on the Hub, and what was uploaded before the
failure (LFS objects) is not uploaded again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from culturellm.errors import CultureLLMError, ServerError

REPO_ID = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9])?$"
)
T = TypeVar("T")


def check_repo_id(repo: str, flag: str = "--repo") -> str:
    """`ORG/NAME` (letters, digits, `-`, `_`, `.`; no `..` or `--`, not starting or ending with a
    separator), else one clear error naming the flag; the text is shown escaped, never as markup."""
    if not REPO_ID.match(repo) or ".." in repo or "--" in repo:
        shown = repo.encode("unicode_escape").decode("ascii")[:120]
        raise CultureLLMError(
            f"{flag} {shown!r}: not a Hub repository id ORG/NAME (letters, digits, '-', '_', '.'; no '..' "
            "or '--')"
        )
    return repo


def is_org(org: str) -> bool:
    """An organisation or user name (the ORG of ORG/NAME)."""
    return bool(REPO_ID.match(f"{org}/x")) and ".." not in org and "--" not in org


def get_token() -> str:
    """The Hub token: HF_TOKEN, else the huggingface_hub login; one line when there is none."""
    from huggingface_hub import get_token as hf_token

    token = hf_token()
    if not token:
        raise CultureLLMError(
            "no Hugging Face token: set HF_TOKEN or log in with `hf auth login` (a token with write access)"
        )
    return token


def hub_api(token: str | None = None) -> Any:
    from huggingface_hub import HfApi

    return HfApi(token=token or get_token())


@contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Turn huggingface_hub's and the network's errors inside the block into one line naming `what`."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as e:
        raise _http_error(what, e) from None
    except CultureLLMError:
        raise
    except (ConnectionError, TimeoutError) as e:  # not any OSError: a local file's error is its own line
        if type(e).__name__ == "OfflineModeIsEnabled":
            raise CultureLLMError(f"{what}: HF_HUB_OFFLINE is set; unset it to reach the Hub") from None
        raise ServerError(
            f"{what}: the connection to the Hub failed ({_short(e)}); run the command again"
        ) from None
    except Exception as e:
        if _is_network(e):
            raise ServerError(
                f"{what}: the connection to the Hub was dropped ({_short(e)}); run the command again: "
                "nothing was committed, and files already uploaded are not sent twice"
            ) from None
        raise


def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with hub_errors(what):
        return fn(*args, **kwargs)


def _http_error(what: str, e: Any) -> CultureLLMError:
    status = getattr(getattr(e, "response", None), "status_code", None)
    server = _server_message(e)
    if status == 401:
        return CultureLLMError(
            f"{what}: the Hub refused the token (401{server}); check HF_TOKEN or `hf auth login`"
        )
    if status == 403:
        return CultureLLMError(
            f"{what}: no write access (403{server}); use a token with write access to this namespace"
        )
    if status == 409:
        return CultureLLMError(
            f"{what}: conflict on the Hub (409{server}), e.g. a repository of another kind"
        )
    if status == 404:
        return CultureLLMError(f"{what}: not found on the Hub (404{server})")
    if status is not None and status >= 500:
        return ServerError(f"{what}: the Hub failed ({status}{server}); run the command again")
    return ServerError(f"{what}: the Hub answered {status}{server}")


def _server_message(e: Any) -> str:
    from culturellm.errors import one_line

    msg = getattr(e, "server_message", None) or ""
    return f": {one_line(msg)[:200]}" if msg else ""


def _is_network(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return bool(
        names & {"TransportError", "NetworkError", "RemoteProtocolError", "ConnectError", "ReadError"}
    )


def _short(e: BaseException) -> str:
    from culturellm.errors import one_line
    from culturellm.redact import redact_text

    return one_line(redact_text(f"{type(e).__name__}: {e}"))[:200]

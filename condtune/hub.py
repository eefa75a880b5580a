"""Push a saved policy folder to the Hugging Face Hub (:func:`push_policy`), its model card retargeted
to the Hub id; a hub that cannot be reached or refuses is a one-line
:class:`~condtune.errors.ConfigError` naming the repo and the cause."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from condtune.errors import ConfigError
from condtune.io import atomic_path
from condtune.model_card import README, render_model_card, retarget
from condtune.saved_policy import load_policy_card

CONNECTION_ERRORS = ("ConnectionError", "TransportError", "TimeoutException", "Timeout", "RequestError")
"""names of the exception classes (of the HTTP client huggingface_hub uses, whichever it is) that mean the
hub was not reached"""


def push_policy(folder: str | Path, hub_model_id: str, token: str | None = None, *, private: bool | None = None) -> str:
    """Upload the policy in ``folder`` to the Hub model repo ``hub_model_id`` (made if missing); return its
    URL. The folder's README.md loads ``hub_model_id`` in its snippet (a policy saved without one gets one
    first). Only a condtune policy is pushed (its card is checked first)."""
    folder = Path(folder)
    card, base = load_policy_card(folder)  # not a policy, or a damaged card: an ArtifactError naming it
    readme = folder / README
    text = readme.read_text(encoding="utf-8") if readme.exists() else render_model_card(card, base, name=str(folder))
    with atomic_path(readme) as tmp:
        tmp.write_text(retarget(text, hub_model_id), encoding="utf-8")
    try:
        api = HfApi(token=token)
        url = api.create_repo(hub_model_id, repo_type="model", exist_ok=True, private=private)
        api.upload_folder(
            folder_path=str(folder),
            repo_id=hub_model_id,
            repo_type="model",
            commit_message="condtune: upload a score-conditioned policy",
            ignore_patterns=[".*"],  # condtune's own state and temporaries
        )
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise ConfigError(
            f"hub_model_id={hub_model_id}: the Hugging Face Hub refused the push"
            + (f" (HTTP {status})" if status else "")
            + f": {_one_line(exc)}"
        ) from None
    except Exception as exc:
        if not _unreachable(exc):
            raise
        raise ConfigError(
            f"hub_model_id={hub_model_id}: cannot reach the Hugging Face Hub to push {folder} "
            f"({type(exc).__name__}: {_one_line(exc)})"
        ) from None
    return str(url)


def _unreachable(exc: BaseException) -> bool:
    """``exc`` (or what it was raised from) says the hub could not be reached: no network, offline mode
    (``HF_HUB_OFFLINE=1``), a refused connection, a timeout."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)) or any(
            c.__name__ in CONNECTION_ERRORS for c in type(exc).__mro__
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "") if text else type(exc).__name__

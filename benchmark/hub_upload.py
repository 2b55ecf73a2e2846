"""Upload a folder to a Hugging Face Hub dataset repo, with clear errors for bad ids, missing auth and no network."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from benchmark.api.errors import ConfigError, SourceUnavailableError

logger = logging.getLogger(__name__)


def check_repo_id(repo_id: str, *, example: str = "imi-bench/results") -> None:
    """Refuse a repo id that is not OWNER/NAME."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"Invalid Hub repo id {repo_id!r}: {err}. Use OWNER/NAME.") from None
    if repo_id.count("/") != 1:
        raise ConfigError(f"Invalid Hub repo id {repo_id!r}: use OWNER/NAME, e.g. {example}.")


def upload_dataset_folder(
    folder: Path,
    repo_id: str,
    *,
    token: str | None,
    revision: str | None,
    commit_message: str,
    delete_patterns: Sequence[str] | None = None,
) -> None:
    """Create the dataset repo (and branch) if needed and upload the folder as one commit."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        info = api.upload_folder(
            folder_path=folder, repo_id=repo_id, repo_type="dataset", revision=revision,
            delete_patterns=list(delete_patterns) if delete_patterns else None, commit_message=commit_message,
        )
    except LocalTokenNotFoundError as err:
        raise _auth_error(repo_id, err) from None
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            raise _auth_error(repo_id, err) from None
        raise _unreachable(repo_id, folder, err) from None
    except (OSError, huggingface_hub.utils.httpx.TransportError) as err:
        raise _unreachable(repo_id, folder, err) from None
    logger.info("uploaded %s to %s: %s", folder, repo_id, getattr(info, "commit_url", info))


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"


def _auth_error(repo_id: str, err: BaseException) -> ConfigError:
    return ConfigError(
        f"Not allowed to write the Hub dataset {repo_id!r}: {_one_line(err)}. Log in with `hf auth login` (a token "
        "with write access to that namespace) or pass --token (or set HF_TOKEN)."
    )


def _unreachable(repo_id: str, folder: Path, err: BaseException) -> SourceUnavailableError:
    return SourceUnavailableError(
        f"Could not upload to the Hub dataset {repo_id!r}: {_one_line(err)}. Check the network (and that "
        f"HF_HUB_OFFLINE is not set) and run again; the folder is ready at {folder}."
    )

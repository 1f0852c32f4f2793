"""Exports on the Hugging Face Hub: `condgan.load("hf://owner/name[@revision]")` and `condgan export --push-to-hub`.

huggingface_hub is an optional extra (`pip install 'condgan[hub]'`), imported only when the Hub is used.
A Hub model is downloaded (only condgan.json and the .safetensors files: never the card, never code) into
huggingface_hub's cache, then read like any local export: the same closed network registry and checks.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CheckpointError, UserError
from ..untrusted import printable

PREFIX = "hf://"
INSTALL = "pip install 'condgan[hub]'"
DOWNLOADED = ["condgan.json", "*.safetensors"]  # what reading an export needs; the rest stays on the Hub
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_REPO = re.compile(rf"^{_PART}/{_PART}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


def is_hub(path) -> bool:
    return isinstance(path, str) and path.startswith(PREFIX)


def repo_id(text: str, what: str = "a Hub model") -> str:
    """`owner/name` checked, so a typo is one line here instead of an HTTP error later."""
    if not isinstance(text, str) or not _REPO.match(text) or ".." in text:
        raise UserError(f"{what} is named owner/name (letters, digits, . _ -), not {printable(repr(text), 80)}")
    return text


def parse(ref: str) -> tuple[str, str | None]:
    """'hf://owner/name@revision' -> ('owner/name', 'revision' or None)."""
    name, _, revision = ref[len(PREFIX):].partition("@")
    if revision and (not _REVISION.match(revision) or ".." in revision):
        raise UserError(f"{printable(ref, 120)}: the revision after @ must be a branch, tag or commit, "
                        f"not {printable(repr(revision), 60)}")
    return repo_id(name, f"{printable(ref, 120)}: a Hub model"), revision or None


def client():
    """The huggingface_hub module, or one line saying how to install it."""
    try:
        import huggingface_hub
        import huggingface_hub.errors  # noqa: F401 (not imported by the package itself in every version)
    except ImportError:
        raise UserError(f"the Hugging Face Hub needs the huggingface_hub package: {INSTALL}") from None
    return huggingface_hub


def download(ref: str) -> Path:
    """The local folder (in huggingface_hub's cache) holding the export at `ref`."""
    hub = client()
    errors = hub.errors
    name, revision = parse(ref)
    try:
        folder = hub.snapshot_download(repo_id=name, revision=revision, allow_patterns=DOWNLOADED)
    except errors.RevisionNotFoundError:
        raise UserError(f"{ref}: {name} has no revision {revision!r} on the Hub") from None
    except errors.RepositoryNotFoundError:  # also gated and private ones without a token
        raise UserError(f"{ref}: no such model on the Hugging Face Hub (a private one needs `hf auth login`)") from None
    except errors.LocalEntryNotFoundError:
        raise UserError(f"{ref}: not in the local Hub cache, and the Hub could not be reached (offline?)") from None
    except (errors.HfHubHTTPError, OSError, ValueError) as e:
        raise UserError(f"{ref}: the Hub download failed ({type(e).__name__}: {printable(e, 160)})") from None
    folder = Path(folder)
    if not (folder / "condgan.json").is_file():
        raise CheckpointError(f"{ref} is not a condgan export (it has no condgan.json); condgan loads models that "
                              f"`condgan export` wrote")
    return folder


def push(folder: Path, name: str, private: bool = False) -> str:
    """Upload an export folder to the Hub model repository `name` (created if needed); return its address."""
    hub = client()
    api = hub.HfApi()
    try:
        api.create_repo(name, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=name, folder_path=str(folder), repo_type="model",
                          commit_message="condgan export", ignore_patterns=[".*"])
    except (hub.errors.HfHubHTTPError, OSError, ValueError) as e:
        reason = "log in with `hf auth login` or set HF_TOKEN" if isinstance(e, hub.errors.LocalTokenNotFoundError) \
            or getattr(getattr(e, "response", None), "status_code", None) in (401, 403) else printable(e, 160)
        raise UserError(f"could not upload {folder} to the Hub repository {name}: {reason}") from None
    return f"https://huggingface.co/{name}"

"""Resolving Hugging Face Hub repositories into pinned model cards.

``huggingface_hub`` lists a repository at one commit with each file's size and,
for LFS files, the sha256 the Hub computed at upload. Those hashes go into the card,
so the cache verifies the bytes against the Hub's own hash before they become
visible. Small non-LFS files (configs, tokenizers) only have a git blob id: they are
fetched here, checked against that id, and their sha256 pinned.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from terminus.errors import (
    ChecksumMismatchError,
    GatedModelError,
    OfflineError,
    RemoteModelNotFoundError,
    SourceUnavailableError,
)
from terminus.models.hub_ref import HubRef

DEFAULT_ENDPOINT = "https://huggingface.co"
OFFLINE_ENVS = ("TERMINUS_OFFLINE", "HF_HUB_OFFLINE")
#: Non-LFS files are small by construction (the Hub stores anything big in LFS).
SMALL_FILE_LIMIT = 32 << 20


def _configure_hub() -> None:
    """No telemetry: huggingface_hub's user agent otherwise fetches an "agent harness"
    registry from the Hub and writes it under ``HF_HOME``. ``HF_HUB_DISABLE_TELEMETRY=0``
    keeps the library's default."""
    if os.environ.get("HF_HUB_DISABLE_TELEMETRY", "").strip() in ("0", "false", "False"):
        return
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from huggingface_hub import constants

    constants.HF_HUB_DISABLE_TELEMETRY = True


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in OFFLINE_ENVS
    )


def hub_token() -> str | None:
    """``HF_TOKEN``, else the token ``hf auth login`` saved."""
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    from huggingface_hub import get_token

    return get_token()


def hub_headers(url: str, endpoint: str | None = None) -> dict[str, str]:
    """huggingface_hub's own headers (user agent, token); the token goes to the endpoint
    host only (httpx drops it on a redirect to another origin, such as the CDN)."""
    _configure_hub()
    from huggingface_hub.utils import build_hf_headers

    endpoint = endpoint or hub_endpoint()
    same_host = urlsplit(url).netloc == urlsplit(endpoint).netloc
    token = hub_token() if same_host else None
    headers = build_hf_headers(token=token or False, library_name="terminus")
    if not same_host:
        headers.pop("authorization", None)
    return dict(headers)


def file_url(repo: str, revision: str, path: str, endpoint: str | None = None) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo, path, revision=revision, endpoint=endpoint or hub_endpoint())


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # from LFS metadata; None for small files stored in git
    blob_id: str | None  # the git blob sha1


@dataclass(frozen=True)
class RemoteRepo:
    repo: str
    commit: str
    gated: bool
    files: dict[str, RemoteFile]
    license: str | None = None

    def sizes(self) -> dict[str, int]:
        return {p: f.size for p, f in self.files.items()}


def list_repo(ref: HubRef, *, model_name: str | None = None) -> RemoteRepo:
    """The repository's files at one commit (``ref.revision`` or the default branch)."""
    name = model_name or str(ref)
    endpoint = hub_endpoint()
    if hub_offline():
        raise OfflineError(
            f"{name} is not in the cache and downloads are off",
            hint="unset TERMINUS_OFFLINE / HF_HUB_OFFLINE, or pull it on a machine online",
        )
    _configure_hub()
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    api = HfApi(endpoint=endpoint, token=hub_token() or False, library_name="terminus")
    try:
        info = api.model_info(ref.repo, revision=ref.revision, files_metadata=True, timeout=30)
    except GatedRepoError as exc:
        raise _gated(name, ref.repo) from exc
    except RepositoryNotFoundError as exc:
        raise RemoteModelNotFoundError(
            f"{name}: no repository {ref.repo} on {endpoint}",
            hint="check the name; a private or gated repository needs HF_TOKEN",
        ) from exc
    except RevisionNotFoundError as exc:
        raise RemoteModelNotFoundError(
            f"{name}: {ref.repo} has no revision {ref.revision}"
        ) from exc
    except OfflineModeIsEnabled as exc:
        raise OfflineError(f"{name}: the Hub is in offline mode (HF_HUB_OFFLINE)") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise SourceUnavailableError(f"{name}: {endpoint} answered HTTP {status}") from exc
    except Exception as exc:  # connection refused, DNS, TLS: httpx2 transport errors
        if type(exc).__module__.split(".")[0] in ("httpx2", "httpx", "httpcore"):
            raise OfflineError(
                f"{name}: cannot reach {endpoint} ({type(exc).__name__})",
                hint="check the network or HF_ENDPOINT; cached models still work offline",
            ) from exc
        raise
    files: dict[str, RemoteFile] = {}
    for sibling in info.siblings or ():
        lfs = sibling.lfs
        files[sibling.rfilename] = RemoteFile(
            path=sibling.rfilename,
            size=int(lfs.size if lfs else (sibling.size or 0)),
            sha256=lfs.sha256 if lfs else None,
            blob_id=sibling.blob_id,
        )
    card_data: Any = getattr(info, "card_data", None)
    license_name = getattr(card_data, "license", None) if card_data is not None else None
    return RemoteRepo(
        repo=ref.repo,
        commit=info.sha or ref.revision or "main",
        gated=bool(info.gated),
        files=files,
        license=str(license_name) if license_name else None,
    )


def _gated(name: str, repo: str) -> GatedModelError:
    return GatedModelError(
        f"{name}: {repo} is gated; the Hub refused access",
        hint=f"accept its terms on {hub_endpoint()}/{repo} and set HF_TOKEN "
        "(or run `hf auth login`)",
    )


def check_access(repo: RemoteRepo, name: str) -> None:
    """Fail before any download when a gated repository is asked for without a token."""
    if repo.gated and not hub_token():
        raise _gated(name, repo.repo)


def pinned_sha256(repo: RemoteRepo, path: str, name: str) -> str:
    """The sha256 to pin for one file: the Hub's LFS hash, or (small git files) the hash
    of bytes fetched now and checked against the Hub's git blob id."""
    remote = repo.files[path]
    if remote.sha256:
        return remote.sha256
    if remote.size > SMALL_FILE_LIMIT:
        raise SourceUnavailableError(f"{name}: {path} is large but has no LFS hash to pin")
    import httpx

    url = file_url(repo.repo, repo.commit, path)
    try:
        response = httpx.get(url, headers=hub_headers(url), follow_redirects=True, timeout=60)
    except httpx.HTTPError as exc:
        raise OfflineError(f"{name}: cannot fetch {path} from {hub_endpoint()}: {exc}") from exc
    if response.status_code in (401, 403):
        raise _gated(name, repo.repo)
    if response.status_code == 404:
        raise RemoteModelNotFoundError(f"{name}: {repo.repo} has no file {path}")
    if response.status_code != 200:
        raise SourceUnavailableError(f"{name}: HTTP {response.status_code} fetching {path}")
    data = response.content
    git_id = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    if remote.blob_id and git_id != remote.blob_id:
        raise ChecksumMismatchError(
            f"{name}: {path} hashes to git blob {git_id[:12]}…, the Hub lists {remote.blob_id[:12]}…"
        )
    return hashlib.sha256(data).hexdigest()

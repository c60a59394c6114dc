"""BitTorrent v2 through libtorrent: tuned sessions and deterministic model torrents.

A model's torrent holds its blobs as ``blobs/<sha256>``; with a fixed piece size
and no creation date its v2 info-hash depends only on the bytes, so every node
that shares the same model seeds the same swarm. libtorrent checks every 16 KiB
block against the v2 Merkle tree before writing it and identifies (then bans) a
peer that sends bad data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from terminus.errors import EngineUnavailableError
from terminus.models.card import ModelCard

PIECE_SIZE = 4 << 20
#: Settings measured on loopback (docs/p2p.md): the untuned defaults reach ~34 MB/s.
TUNED_SETTINGS: dict[str, Any] = {
    "enable_dht": False,  # peers come from references; no public bootstrap needed
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_incoming_utp": False,  # uTP's congestion control caps loopback throughput
    "enable_outgoing_utp": False,
    "allow_multiple_connections_per_ip": True,  # several peers on one host (tests, LAN boxes)
    "upload_rate_limit": 0,
    "download_rate_limit": 0,
    "rate_limit_ip_overhead": False,
    "choking_algorithm": 0,  # fixed slots
    "unchoke_slots_limit": -1,  # never choke a peer that wants data
    "send_buffer_watermark": 64 << 20,
    "send_buffer_low_watermark": 16 << 20,
    "send_buffer_watermark_factor": 200,
    "send_socket_buffer_size": 8 << 20,
    "recv_socket_buffer_size": 8 << 20,
    "max_queued_disk_bytes": 32 << 20,  # larger queues hold verified pieces in memory, unflushed
    "max_out_request_queue": 4000,
    "max_allowed_in_request_queue": 8000,
    "request_queue_time": 10,
    "aio_threads": 4,
    "hashing_threads": 2,
    "connection_speed": 200,
    # The session acts on a timer tick (default 500 ms): unchoking, requests and
    # connecting wait for it, which alone capped a loopback transfer at ~1.5 s.
    "tick_interval": 50,
    "peer_connect_timeout": 3,
    "min_reconnect_time": 1,
    "smooth_connects": False,
    "close_redundant_connections": False,
}


def libtorrent() -> Any:
    """The libtorrent module, imported on first use (it is an optional extra)."""
    try:
        import libtorrent as lt
    except ImportError as exc:
        raise EngineUnavailableError(
            "peer-to-peer model sharing needs libtorrent",
            hint="pip install 'terminus-sdk[p2p]'",
        ) from exc
    return lt


PUBLIC_ENV = "TERMINUS_P2P_PUBLIC"


def public_default() -> bool:
    """``TERMINUS_P2P_PUBLIC=1``: also use the DHT, local discovery and UPnP/NAT-PMP."""
    return os.environ.get(PUBLIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def make_session(
    listen: str = "0.0.0.0:6881", *, tuned: bool = True, public: bool | None = None
) -> Any:
    """A session; ``public`` adds the DHT (public bootstrap nodes), LSD and port mapping,
    for peers beyond the references when the internet is there."""
    lt = libtorrent()
    alerts = lt.alert.category_t
    settings: dict[str, Any] = {
        "listen_interfaces": listen,
        "alert_mask": alerts.error_notification
        | alerts.status_notification
        | alerts.peer_notification
        | alerts.storage_notification,
        "user_agent": "terminus",
    }
    if tuned:
        settings.update(TUNED_SETTINGS)
    else:
        settings.update(
            {"enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False}
        )
        settings["allow_multiple_connections_per_ip"] = True
    if public_default() if public is None else public:
        settings.update(
            {"enable_dht": True, "enable_lsd": True, "enable_upnp": True, "enable_natpmp": True}
        )
    return lt.session(settings)


def listen_port(session: Any) -> int:
    return int(session.listen_port())


def model_torrent_bytes(card: ModelCard, blobs_dir: Path, web_seeds: tuple[str, ...] = ()) -> bytes:
    """The deterministic v2 .torrent of a cached model's blobs (hashes them once)."""
    lt = libtorrent()
    entries = [
        lt.create_file_entry(f"blobs/{sha}", (blobs_dir / sha).stat().st_size)
        for sha in sorted({f.sha256 for f in card.files})
    ]
    creator = lt.create_torrent(entries, PIECE_SIZE, lt.create_torrent.v2_only)
    for url in web_seeds:
        creator.add_url_seed(url)
    lt.set_piece_hashes(creator, str(blobs_dir.parent))
    return bytes(lt.bencode(creator.generate()))


def model_torrent(card: ModelCard, blobs_dir: Path, web_seeds: tuple[str, ...] = ()) -> Any:
    return libtorrent().torrent_info(model_torrent_bytes(card, blobs_dir, web_seeds))


def save_path_for(info: Any, blobs_dir: Path) -> Path:
    """Where libtorrent must look so that its files are ``blobs_dir/<sha256>``.

    A one-file torrent stores the file at ``<save_path>/<sha256>``; a multi-file one
    at ``<save_path>/blobs/<sha256>``.
    """
    return blobs_dir.parent if info.name() == "blobs" else blobs_dir


def v2_info_hash(info: Any) -> str:
    return str(info.info_hashes().v2)

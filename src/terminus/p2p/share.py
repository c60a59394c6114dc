"""Seed cached models to peers: one tuned libtorrent session, torrents kept between runs."""

from __future__ import annotations

import logging
import socket
from typing import Any

from terminus.models.cache import ModelCache
from terminus.models.card import ModelCard
from terminus.models.progress import NullProgress, Progress
from terminus.p2p.reference import ModelRef
from terminus.p2p.torrent import (
    libtorrent,
    listen_port,
    make_session,
    model_torrent_bytes,
    save_path_for,
    v2_info_hash,
)

log = logging.getLogger(__name__)


class Seeder:
    """Shares verified blobs from the cache. Only cached (hash-checked) models can be shared."""

    def __init__(
        self,
        cache: ModelCache,
        *,
        listen: str = "0.0.0.0:6881",
        advertise: tuple[str, ...] | None = None,
        public: bool | None = None,
    ) -> None:
        self.cache = cache
        self.session = make_session(listen, public=public)
        self._listen_host = listen.rpartition(":")[0].strip("[]")
        self._advertise = advertise
        self.handles: dict[str, Any] = {}

    @property
    def port(self) -> int:
        return listen_port(self.session)

    def addresses(self) -> tuple[str, ...]:
        """``host:port`` addresses peers can dial (the listen address, or this host's IPs)."""
        if self._advertise:
            hosts = self._advertise
        elif self._listen_host not in ("0.0.0.0", "::", ""):
            hosts = (self._listen_host,)
        else:
            hosts = tuple(dict.fromkeys((*_local_ips(), "127.0.0.1")))
        return tuple(f"[{h}]:{self.port}" if ":" in h else f"{h}:{self.port}" for h in hosts)

    def share(
        self,
        card: ModelCard,
        *,
        web_seeds: tuple[str, ...] = (),
        progress: Progress | None = None,
    ) -> ModelRef:
        """Seed ``card``'s blobs (it must be cached) and return its reference."""
        lt = libtorrent()
        self.cache.files(card)  # raises ModelNotCachedError with a pull hint
        info = self._torrent(card, web_seeds, progress or NullProgress())
        info_hash = v2_info_hash(info)
        if info_hash not in self.handles:
            params = lt.add_torrent_params()
            params.ti = info
            params.save_path = str(save_path_for(info, self.cache.blobs))
            # The cache verified every blob's sha256 already, so every piece is claimed
            # without a recheck (seed mode would hash each piece again before sending it,
            # halving throughput); leechers verify every block against the Merkle tree anyway.
            params.have_pieces = [True] * info.num_pieces()
            params.flags = lt.torrent_flags.no_verify_files
            self.handles[info_hash] = self.session.add_torrent(params)
        return ModelRef(
            model_id=card.id,
            info_hash=info_hash,
            files=card.files,
            peers=self.addresses(),
            web_seeds=web_seeds,
            capability=card.capability.value,
            engine=card.engine,
        )

    def pump(self, timeout_ms: int = 500) -> None:
        """Wait for and log session events; call in a loop while seeding."""
        self.session.wait_for_alert(timeout_ms)
        for alert in self.session.pop_alerts():
            if alert.category() & libtorrent().alert.category_t.error_notification:
                log.warning("%s", alert.message())

    def stats(self) -> list[dict[str, Any]]:
        rows = []
        for info_hash, handle in self.handles.items():
            status = handle.status()
            rows.append(
                {
                    "info_hash": info_hash,
                    "peers": int(status.num_peers),
                    "uploaded": int(status.all_time_upload),
                }
            )
        return rows

    def close(self) -> None:
        self.session.pause()

    def _torrent(self, card: ModelCard, web_seeds: tuple[str, ...], progress: Progress) -> Any:
        """Reuse the torrent made last time; hashing a large model takes a while."""
        lt = libtorrent()
        key = "-".join(sorted(f.sha256[:16] for f in card.files))
        folder = self.cache.root / "p2p" / "torrents"
        path = folder / f"{key}.torrent"
        if path.exists() and not web_seeds:
            return lt.torrent_info(str(path))
        progress.start(f"hashing {card.id} for sharing", card.size or None)
        data = model_torrent_bytes(card, self.cache.blobs, web_seeds)
        progress.advance(card.size)
        progress.finish()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return lt.torrent_info(data)


def _local_ips() -> list[str]:
    import psutil

    ips = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                ips.append(addr.address)
    return ips

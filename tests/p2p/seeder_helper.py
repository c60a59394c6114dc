"""A seeder for the tests: serves a model's torrent from a copy that may be tampered or throttled.

Usage: python seeder_helper.py GENUINE_HOME MODEL_ID PORT READY_FILE [--corrupt] [--rate BPS]
The torrent is made from the genuine cached blobs (so its info-hash matches honest
seeders); the bytes served come from a private copy, corrupted in every piece with
--corrupt, and announced as complete without any check, like a liar would.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import libtorrent as lt

from terminus.models.cache import ModelCache
from terminus.models.catalog import Catalog
from terminus.p2p.torrent import PIECE_SIZE, make_session, model_torrent, save_path_for


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("model")
    parser.add_argument("port", type=int)
    parser.add_argument("ready", type=Path)
    parser.add_argument("--corrupt", action="store_true")
    parser.add_argument("--rate", type=int, default=0)
    args = parser.parse_args()

    cache = ModelCache(args.home)
    card = Catalog(args.home / "cards").get(args.model)
    info = model_torrent(card, cache.blobs)
    served = args.home / "served" / "blobs"
    served.mkdir(parents=True, exist_ok=True)
    for file in card.files:
        copy = served / file.sha256
        shutil.copyfile(cache.blob_path(file.sha256), copy)
        if args.corrupt:
            with copy.open("r+b") as fh:
                size = copy.stat().st_size
                for offset in range(PIECE_SIZE // 2, size, PIECE_SIZE):
                    fh.seek(offset)
                    fh.write(b"\xffTAMPERED\xff")
    session = make_session(f"127.0.0.1:{args.port}")
    if args.rate:
        session.apply_settings(
            {"upload_rate_limit": args.rate, "ignore_limits_on_local_network": False}
        )
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = str(save_path_for(info, served))
    if args.corrupt:
        # Claim every piece without any check (seed mode would hash pieces before sending).
        params.have_pieces = [True] * info.num_pieces()
        params.flags = lt.torrent_flags.no_verify_files
    else:
        params.flags = lt.torrent_flags.seed_mode
    session.add_torrent(params)
    args.ready.write_text(f"{session.listen_port()}\n")
    while True:
        session.wait_for_alert(500)
        session.pop_alerts()
        time.sleep(0.1)


if __name__ == "__main__":
    main()

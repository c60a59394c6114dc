"""Peer-to-peer: node identity, model distribution between peers, delegated inference."""

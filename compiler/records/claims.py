"""Claims: concurrent tuning runs on one records database split the candidates.

A run claims the candidates it is about to measure (`claim`), skips those another
live run holds, and a claim goes when its record is written (`SQLiteStore.add`)
or when its owner is gone (a dead process on this host) or older than CLAIM_TTL_S.
The `claims` table is created with the database's schema (store.py).
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable

CLAIM_TTL_S = 3 * 3600.0  # a claim older than this is dropped, its owner alive or not


def claim_owner() -> str:
    """A claim owner for this process: `host:pid:random` (one per Measurer)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Claims:
    """The claim methods of SQLiteStore (a mixin over its connection, lock and retry)."""

    def claim(self, workload_key: str, target: str, hashes: Iterable[str], owner: str) -> set[str]:
        """Claim candidates (steps hashes of one workload on one target) for `owner`
        (`claim_owner()`); returns those `owner` now holds, to measure.

        In one transaction: claims whose owner is gone (a dead process on this
        host) or older than CLAIM_TTL_S are dropped, then every hash neither
        measured nor claimed by another owner is claimed. A claim goes when the
        candidate's record is written (`add`)."""
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return set()
        where = "workload_key=? AND target=? AND steps_hash=?"

        def write() -> set[str]:
            now = time.time()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM claims WHERE since < ?", (now - CLAIM_TTL_S,))
                owners = self._db.execute("SELECT DISTINCT owner FROM claims").fetchall()
                for (other,) in owners:
                    if other != owner and _owner_gone(other):
                        self._db.execute("DELETE FROM claims WHERE owner=?", (other,))
                held = set()
                for h in wanted:
                    key = (workload_key, target, h)
                    if self._db.execute(
                        f"SELECT 1 FROM measurements WHERE {where}", key
                    ).fetchone():
                        continue
                    self._db.execute(
                        "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?, ?)", (*key, owner, now)
                    )
                    (holder,) = self._db.execute(
                        f"SELECT owner FROM claims WHERE {where}", key
                    ).fetchone()
                    if holder == owner:
                        held.add(h)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            return held

        with self._lock:
            try:
                return self._retry(write)
            except (sqlite3.Error, OSError) as err:
                from compiler.records.store import StoreWriteError

                raise StoreWriteError(f"{self.path}: cannot claim candidates ({err})") from err

    def claims(self) -> list[tuple[str, str, str, str, float]]:
        """Every claim held: (workload_key, target, steps_hash, owner, since)."""
        sql = "SELECT workload_key, target, steps_hash, owner, since FROM claims ORDER BY since"
        return self._query(sql, ())


def _owner_gone(owner: str) -> bool:
    """Whether a claim's owner (`host:pid:random`) is a process of this host that
    is no longer running; an owner on another host only expires (CLAIM_TTL_S)."""
    host, pid, *_ = owner.rsplit(":", 2) + ["", ""]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False

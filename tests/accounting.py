"""Test helpers for privacy accounting: a test key, a test ledger, a registered lineage.

Every test ledger gets its own steward key in its own folder, outside any analytics
home, exactly as production requires.
"""

from __future__ import annotations

from pathlib import Path

from analytics import lineage
from analytics.auth import User
from analytics.ledger import Ledger
from analytics.seal import StewardKey
from analytics.validate import load_dataset

STEWARD = User("sam-steward", "steward")
RESEARCHER = User("ann", "researcher")


def new_key(folder: Path) -> StewardKey:
    """A fresh steward key in ``folder/key/`` (created, mode 0600)."""
    return StewardKey.load(folder / "key" / "steward.key", home=folder / "home")


def new_ledger(folder: Path, *, seeded: bool = True, key: StewardKey | None = None) -> Ledger:
    """A ledger in ``folder/home/`` with its own key; ``seeded`` allows test seeds."""
    return Ledger(folder / "home" / "ledger.sqlite3", key=key or new_key(folder), allow_seeded_noise=seeded)


def registered(
    ledger: Ledger,
    data_dir: Path,
    *,
    name: str = "test-lineage",
    cap: float = 20.0,
    public: float | None = 20.0,
    researchers: dict[str, float] | None = None,
    max_query: float | None = None,
) -> lineage.Attached:
    """Register ``name`` (if needed), set allocations and attach the extract in ``data_dir``."""
    if name not in ledger.lineages():
        lineage.register(
            ledger,
            STEWARD,
            name,
            cap=cap,
            description="test population",
            public_allocation=public,
            max_query=max_query,
        )
    for who, amount in (researchers or {}).items():
        ledger.set_allocation(name, f"researcher:{who}", amount, principal=STEWARD.name)
    return lineage.attach(ledger, STEWARD, name, load_dataset(Path(data_dir)).source, label="test extract")


def build_test_release(
    data_dir: Path, releases_dir: Path, *, epsilon: float | None = None, seed: int | None = None, cap: float = 1_000.0
) -> None:
    """Register ``data_dir`` in a fresh test ledger beside ``releases_dir`` and release it (the steward path)."""
    from analytics.release import DEFAULT_RELEASE_EPSILON, build_release

    ledger = new_ledger(Path(releases_dir).parent / "accounting")
    registered(ledger, data_dir, name="test-lineage", cap=cap, public=cap)
    build_release(
        data_dir,
        releases_dir,
        user=STEWARD,
        epsilon=DEFAULT_RELEASE_EPSILON if epsilon is None else epsilon,
        ledger=ledger,
        seed=seed,
    )

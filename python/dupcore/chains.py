"""An incremental interrupted before its signature file was saved no longer blocks the chain.

duplicity saves a new backup set's manifest and then its signature file to the archive
directory after the first volume is uploaded. Killed between the two, the set is left with a
partial manifest and no signatures. duplicity's ``set_matched_chain_pair`` is meant for this:
when the signatures end one set before the backup chain, it discards the last set with a
warning and the next incremental starts anew. But it compares with that set's ``end_time``,
which a full backup set does not have, so when the interrupted incremental is the first of its
chain nothing matches and every later incremental stops with "Old signatures not found"
(exit 17) until the user finds ``cleanup``. This component lets the comparison see a full set's
time as its end time, so duplicity's own branch runs with its own warning.
"""
from __future__ import annotations

import functools
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from dupcore.adapters import Adapter


def _with_full_end_time(match: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(match)
    def set_matched_chain_pair(self: Any, sig_chains: Any, backup_chains: Any) -> Any:
        before_last = None
        if backup_chains:
            sets = backup_chains[-1].get_all_sets()
            if len(sets) >= 2 and getattr(sets[-2], "end_time", 0) is None:
                before_last = sets[-2]
                before_last.end_time = before_last.time
        try:
            return match(self, sig_chains, backup_chains)
        finally:
            if before_last is not None:
                before_last.end_time = None

    return set_matched_chain_pair


def install_collections(module: ModuleType, adapter: Adapter) -> str:
    """Hook on ``duplicity.dup_collections``: a full set's time serves as its end time when
    duplicity matches signature chains with the set before the last."""
    from dupcore.stock import Stock

    status = getattr(module, "CollectionsStatus", None)
    if not callable(getattr(status, "set_matched_chain_pair", None)):
        raise Stock("dup_collections.CollectionsStatus has no set_matched_chain_pair")
    status.set_matched_chain_pair = _with_full_end_time(status.set_matched_chain_pair)
    return "an incremental interrupted before its signatures were saved is discarded"

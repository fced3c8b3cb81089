"""`edgekit store flush`: write the results spooled while the results store did not answer."""

from __future__ import annotations

import typer

from edgekit.cli.common import JsonOption, StoreOption, store_location
from edgekit.cli.output import print_json, stdout
from edgekit.core.errors import EXIT_OK, EXIT_USAGE
from edgekit.store.open import open_store, spool_of
from edgekit.store.spool import other_spools

store_app = typer.Typer(help="The results store: write what was spooled.", no_args_is_help=True)


@store_app.command("flush")
def flush(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Write the results spooled for this store (kept under $EDGEKIT_HOME/spool while it did not
    answer), oldest first, each once: a spool file is removed only after its write committed, and
    a run already stored is not stored again. Runs that open the store to write (bench, fleet run,
    optimize, compare --device) do this too. Exit 0 when the spool is empty afterwards, 2 when the
    store cannot be reached (nothing is lost: the entries stay) or refused an entry (it stays), or
    when there is no store at that location and nothing spooled for it. On an error, --json prints
    nothing on stdout (as every command): the one error line is on stderr."""
    location = store_location(store)
    spool = spool_of(location)
    written = already = 0
    left: list[str] = []
    if spool.files():
        results_store = open_store(location)  # without a spool: a store that does not answer is exit 2
        try:
            counts = results_store.flush_spool(spool)
        finally:
            results_store.close()
        written, already, left = counts.written, counts.already_stored, [str(p) for p in counts.left]
    else:  # nothing to write: the store is still checked as a reader checks it ("no results store at")
        open_store(location, read_only=True).close()
    others = other_spools(spool)
    if as_json:
        print_json(
            {
                "store": spool.store,
                "spool": str(spool.directory),
                "written": written,
                "already_stored": already,
                "left": left,
                "other_stores": others,
            }
        )
    else:
        stdout.print(
            f"{spool.store}: wrote {_entries(written)} from the spool"
            + (f", {already} already stored" if already else "")
            + (f", {len(left)} left in {spool.directory}" if left else ""),
            markup=False,
            soft_wrap=True,  # one line, however long the paths
        )
        for shown, count in others.items():
            stdout.print(
                f"{shown}: {_entries(count)} spooled (flush them with --store)", markup=False, soft_wrap=True
            )
    raise typer.Exit(EXIT_USAGE if left else EXIT_OK)


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"

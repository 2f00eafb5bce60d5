"""``graphctl models list|show|delete``: look after the local model store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from runners import models

_EPILOG = "The store is GRAPHCTL_HOME (else the user data folder), or --store."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models", help="list, show or delete stored models", epilog=_EPILOG
    )
    parser.add_argument("--store", metavar="DIR", help="the store's folder")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every stored version, newest last")
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one version's metadata (NAME[:VERSION])")
    show.add_argument("ref")
    show.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    show.set_defaults(handler=_show)
    delete = actions.add_parser("delete", help="remove one version (NAME:VERSION|NAME:latest)")
    delete.add_argument("ref")
    delete.add_argument("-o", "--output", choices=("text", "json"), default="text")
    delete.set_defaults(handler=_delete)


def _list(args: argparse.Namespace) -> int:
    infos = models.list_models(store=args.store)
    if args.output == "json":
        print(json.dumps([info.to_dict() for info in infos], indent=2))
        return 0
    rows = [("MODEL", "FRAMEWORK", "METHODS", "SIZE", "CREATED")]
    rows += [
        (str(i.ref), i.framework, ",".join(i.signatures), _size(i.size), i.created[:19])
        for i in infos
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not infos:
        print(f"(no models in {models.store_home(args.store)})", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    info = models.get(args.ref, store=args.store)
    doc = info.to_dict()
    if args.output == "json":
        print(json.dumps(doc, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(doc, sort_keys=False).rstrip())
    return 0


def _delete(args: argparse.Namespace) -> int:
    removed = models.delete(args.ref, store=args.store)
    if args.output == "json":
        print(json.dumps({"deleted": str(removed)}))
    else:
        print(f"deleted {removed}")
    return 0


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"

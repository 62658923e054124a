"""``manage.py benchmark NAME``: one convention for every benchmark of the project.

A benchmark is a module ``<app>/benchmarks/<NAME>.py`` with
``run(*, say: Callable[[str], None]) -> dict``. It reports progress through ``say``
for a person; this command then prints its figures as **one line of JSON**, always
the last line, so scripts can take it with ``tail -n 1``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import time

from django.core.management.base import BaseCommand, CommandError

APPS_WITH_BENCHMARKS = ("portal", "integrations", "billing")


def benchmarks_available() -> dict[str, str]:
    found: dict[str, str] = {}
    for app in APPS_WITH_BENCHMARKS:
        try:
            package = importlib.import_module(f"{app}.benchmarks")
        except ModuleNotFoundError:
            continue
        for module in pkgutil.iter_modules(package.__path__):
            found[module.name] = f"{app}.benchmarks.{module.name}"
    return found


class Command(BaseCommand):
    help = "Run a benchmark (or 'all'); the last line printed is its figures as JSON."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", default="", help="a benchmark's name, or 'all'")
        parser.add_argument("--list", action="store_true", help="list the benchmarks")
        parser.add_argument(
            "--quick", action="store_true", help="a shorter run, for the benchmarks that have one (scale)"
        )
        parser.add_argument("--intake", action="store_true", help="scale: measure only the webhook intake")

    def handle(self, *args, name: str, list: bool, quick: bool = False, intake: bool = False, **options):  # noqa: A002 - argparse's name
        available = benchmarks_available()
        if list or not name:
            self.stdout.write("benchmarks: " + ", ".join(sorted(available)))
            return
        names = sorted(available) if name == "all" else [name]
        unknown = [n for n in names if n not in available]
        if unknown:
            raise CommandError(f"no benchmark {unknown[0]!r}; there are: {', '.join(sorted(available))}")
        results = {}
        for bench in names:
            module = importlib.import_module(available[bench])
            self.stdout.write(f"== benchmark {bench}")
            started = time.perf_counter()
            say = lambda line: (self.stdout.write(f"  {line}"), self.stdout.flush())  # noqa: E731
            parameters = inspect.signature(module.run).parameters
            chosen = {"quick": quick, "intake": intake}
            figures = module.run(
                say=say, **{key: True for key, on in chosen.items() if on and key in parameters}
            )
            figures.setdefault("benchmark", bench)
            figures.setdefault("total_seconds", round(time.perf_counter() - started, 2))
            results[bench] = figures
            if len(names) > 1:
                self.stdout.write(json.dumps(figures, sort_keys=True))
        final = results[names[0]] if len(names) == 1 else results
        self.stdout.write(json.dumps(final, sort_keys=True))

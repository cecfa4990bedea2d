"""The command-line convention every tool of the project keeps: a mistake is one line and exit 2.

It lives on the ground floor because the device's own commands (classify-cam, stockroom-tally)
use it and a Pi installs nothing above device/; fashion-train, fashion-convert and
fashion-photo-eval import it from here.
"""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, not argparse's usage block
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")

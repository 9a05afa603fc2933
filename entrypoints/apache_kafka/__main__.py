"""`python -m entrypoints.apache_kafka [--brokers 3] [--sasl-ssl] [--resolve-only]` (cli.py)."""

import sys

from entrypoints.apache_kafka.cli import main

if __name__ == "__main__":
    sys.exit(main())

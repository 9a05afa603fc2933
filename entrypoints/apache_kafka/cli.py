"""`python -m entrypoints.apache_kafka`: run Apache Kafka on free loopback ports until Ctrl-C.

`--resolve-only` fetches the jars with mvn, prints where and exits (the Makefile's
`test-kafka` runs it first).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from entrypoints.apache_kafka.cluster import apache_kafka
from entrypoints.apache_kafka.install import resolve_kafka
from entrypoints.broker import BrokerUnavailable


def main(argv: list[str] | None = None) -> int:
    """`python -m entrypoints.apache_kafka`: resolve, start, print where, run until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m entrypoints.apache_kafka",
        description="Run Apache Kafka (KRaft) on free loopback ports until Ctrl-C.",
    )
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    parser.add_argument("--sasl-ssl", action="store_true", help="add a SASL_SSL/SCRAM listener")
    parser.add_argument(
        "--resolve-only", action="store_true", help="fetch the jars with mvn, print where, exit"
    )
    args = parser.parse_args(argv)

    from casebook.settings import get_settings
    from entrypoints.logging import configure_logging

    configure_logging(get_settings(), stream="stderr")

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGTERM (e.g. from a process manager) takes the same path as Ctrl-C: close() runs.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        lib = resolve_kafka()
        if args.resolve_only:
            print(lib, flush=True)
            return 0
        with apache_kafka(args.brokers, sasl_ssl=args.sasl_ssl, lib_dir=lib) as cluster:
            print(f"bootstrap servers: {cluster.bootstrap_servers}", flush=True)
            if cluster.sasl_ssl:
                print(f"SASL_SSL bootstrap servers: {cluster.sasl_ssl_bootstrap_servers}")
                print(f"SCRAM user: {cluster.sasl_username}  password: {cluster.sasl_password}")
                print(f"CA file: {cluster.ca_file}", flush=True)
            print("Ctrl-C stops the broker and deletes its data.", flush=True)
            while True:
                time.sleep(1)
                if not cluster.running:
                    for node_id in cluster.node_ids:
                        if not cluster.node_running(node_id):
                            tail = cluster.output_tail(node_id)
                            print(f"node {node_id} exited; its output:\n{tail}", file=sys.stderr)
                    return 1
    except KeyboardInterrupt:
        return 0
    except BrokerUnavailable as error:
        print(f"entrypoints.apache_kafka: {error}", file=sys.stderr)
        return 1

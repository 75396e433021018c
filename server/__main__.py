"""`python -m server`: run the crm-serving gRPC server in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from server.config import ServerConfig
from server.logs import configure_logging
from server.security.mint import COMMANDS as MINT_COMMANDS
from server.transport.affinity import pin_to_one_core
from server.transport.drain import HARD_STOP_AFTER_GRACE_S
from server.transport.memory import cap_malloc_arenas, freeze_heap

log = logging.getLogger("server")
_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in MINT_COMMANDS:  # `crm-server keys|token` (see --help)
        from server.security.mint import main as mint

        return mint(args)
    config = ServerConfig.from_args(argv)
    configure_logging(config.log_level, config.log_format)
    # Block the signals before any gRPC thread exists, so every thread inherits the mask and
    # the main thread alone receives them through sigwait (gRPC's threads would swallow them).
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    cap_malloc_arenas()  # before any thread allocates (see server/transport/memory.py)
    if config.workers > 1 and config.worker_id == 0:
        from server.transport.workers import supervise

        return supervise(config, sys.argv[1:] if argv is None else list(argv))
    if config.pin_cpus:
        # Worker K on usable core K-1, a lone server on the first (see server/transport/affinity.py).
        pin_to_one_core(max(config.worker_id - 1, 0))
    from server.security.tokens import KeyFileError
    from server.transport.app import CrmServer, PortInUse

    try:
        app = CrmServer(config)
    except KeyFileError as err:
        log.error("start-up failed", extra={"reason": str(err)})
        return 2
    try:
        app.start()
    except PortInUse as err:
        log.error("start-up failed", extra={"reason": str(err)})
        return 2
    freeze_heap()  # after the models load, and after each reload (server/transport/memory.py)
    app.add_reload_listener(freeze_heap)
    if config.worker_id:
        from server.transport.workers import MULTIPROC_ENV, ready_file

        ready_file(Path(os.environ[MULTIPROC_ENV]), config.worker_id).touch()
    received = signal.sigwait(_SIGNALS)
    log.info(
        "shutting down",
        extra={"signal": signal.Signals(received).name, "grace_seconds": config.grace_seconds},
    )
    # SIGALRM's default action terminates the process without needing the GIL (reset it, in
    # case the parent left it ignored).
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(min(math.ceil(config.grace_seconds) + HARD_STOP_AFTER_GRACE_S, 2**31 - 1))
    code = app.stop()
    log.info("stopped", extra={"exit_code": code})
    # Not a normal interpreter exit: that joins every handler thread (concurrent.futures'
    # atexit hook) and an abandoned one may never end; and finalising the grpc.Server would
    # shut gRPC's core down, which cancels calls queued there (see server.transport.drain). The stores
    # are closed and logs are written unbuffered by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

"""``run``'s share of a multi-process sweep: --part I/N, or --distributed (JAX joins the cluster)."""

from __future__ import annotations

import argparse

from engine.commands.common import one_line
from engine.errors import SpecError

_CLUSTER_HELP = ("JAX detects SLURM (SLURM_JOB_ID, SLURM_NTASKS, SLURM_PROCID, SLURM_STEP_NODELIST), Open MPI "
                 "(OMPI_MCA_orte_hnp_uri, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK), Kubernetes "
                 "(KUBERNETES_SERVICE_HOST) and Cloud TPU jobs; elsewhere give --coordinator HOST:PORT (or set "
                 "JAX_COORDINATOR_ADDRESS) with --num-processes N and --process-id I on every process, or run "
                 "independent processes with --part I/N")


def add_share_flags(parser: argparse.ArgumentParser) -> None:
    """--part, --distributed and the coordinator flags of a manual cluster."""
    parser.add_argument("--part", metavar="I/N",
                        help="compute only share I of N (0-based) of the first axis and write OUT.partIII-of-NNN.nc; "
                             "join the parts with `llm-sweep combine`")
    parser.add_argument("--distributed", action="store_true",
                        help="multi-host: call jax.distributed.initialize(), which detects SLURM, Open MPI, "
                             "Kubernetes and Cloud TPU jobs, and take the share from the process index and count")
    parser.add_argument("--coordinator", metavar="HOST:PORT",
                        help="with --distributed outside a detected cluster: process 0's address (JAX also reads "
                             "JAX_COORDINATOR_ADDRESS)")
    parser.add_argument("--num-processes", type=int, metavar="N", help="with --coordinator: how many processes")
    parser.add_argument("--process-id", type=int, metavar="I",
                        help="with --coordinator: this process's index, 0..N-1")


def share_flags(args: argparse.Namespace) -> tuple[int, int] | None:
    """--part I/N as (I, N), None for the whole grid; checked against --distributed and its flags (no cluster
    is joined here)."""
    manual = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
              "--process-id": args.process_id}
    given = [flag for flag, value in manual.items() if value is not None]
    if given and not args.distributed:
        raise SpecError(given[0], str(manual[given[0]]), "applies only with --distributed")
    if args.distributed and args.part is not None:
        raise SpecError("--part", args.part, "--distributed takes the share from the cluster; give one or the other")
    if args.coordinator is not None and (args.num_processes is None or args.process_id is None):
        raise SpecError("--coordinator", args.coordinator, "needs --num-processes N and --process-id I as well")
    if args.num_processes is not None and args.num_processes < 1:
        raise SpecError("--num-processes", str(args.num_processes), "must be a positive integer")
    if args.process_id is not None and args.num_processes is not None and not 0 <= args.process_id < args.num_processes:
        raise SpecError("--process-id", str(args.process_id), f"must be from 0 to {args.num_processes - 1}")
    if args.part is None:
        return None
    index, sep, count = args.part.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise SpecError("--part", args.part, "expected I/N with 0 <= I < N, e.g. 0/4")
    return (i, n) if n > 1 else None


def join_cluster(args: argparse.Namespace) -> tuple[int, int] | None:
    """Join the cluster (jax.distributed.initialize): this process's (index, count), or None alone."""
    import jax

    kwargs = {}
    if args.coordinator is not None:
        kwargs = dict(coordinator_address=args.coordinator, num_processes=args.num_processes,
                      process_id=args.process_id)
    try:
        jax.distributed.initialize(**kwargs)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise SpecError("--distributed", "", f"cannot join a cluster ({one_line(exc)}). {_CLUSTER_HELP}") from None
    count = jax.process_count()
    return (jax.process_index(), count) if count > 1 else None

"""How it is computed: the JAX kernel, chunk plans, the pipeline run(request, sink), on-device queries."""

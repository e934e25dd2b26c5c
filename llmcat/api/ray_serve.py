"""The same app on Ray Serve (``pip install 'llmcat[api]' 'ray[serve]'``): one replica per
``ApiRecipe.app()``, autoscaled on the requests each replica has in flight."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from typing import Any

from llmcat.api.recipe import ApiRecipe
from llmcat.errors import ConfigError

log = logging.getLogger(__name__)

APP_NAME = "llmcat"


@dataclass(frozen=True)
class Scaling:
    """Replicas between ``min_replicas`` and ``max_replicas``; Serve adds one when the
    replicas hold more than ``target_ongoing`` requests each, for ``upscale_delay`` seconds."""

    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing: int = 8
    max_ongoing: int = 64  # per replica: room for the micro-batches to fill
    upscale_delay: float = 3.0
    cpus_per_replica: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ConfigError(
                f"replicas {self.min_replicas}-{self.max_replicas}: need 1 <= min <= max"
            )


class _Replica:
    """A Serve ingress built late: the app, with its own Classifier, made on the replica."""

    def __init__(self, recipe: ApiRecipe) -> None:
        self.recipe = recipe

    def __serve_build_asgi_app__(self) -> Any:  # Serve's hook; the app is a FastAPI app
        return self.recipe.app(warm_before_serving=True)


def application(recipe: ApiRecipe, scaling: Scaling) -> Any:
    """The Serve application (``serve.run`` takes it; Any: Ray's own type)."""
    from ray import serve

    deployment = serve.deployment(
        name="llmcat-api",
        autoscaling_config={
            "min_replicas": scaling.min_replicas,
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing,
            "upscale_delay_s": scaling.upscale_delay,
        },
        max_ongoing_requests=scaling.max_ongoing,
        ray_actor_options={"num_cpus": scaling.cpus_per_replica},
        # a replica is healthy while its process answers; /readyz says more
        health_check_period_s=10,
    )(serve.ingress()(_Replica))
    return deployment.bind(recipe)


def serve_on_ray(
    recipe: ApiRecipe, scaling: Scaling, *, address: str, host: str, port: int
) -> None:
    """Deploy on the cluster at ``address`` ('auto', 'host:6379', or 'local' for a cluster
    started here), serve on ``host:port`` until SIGTERM or Ctrl-C, then remove the app."""
    import ray
    from ray import serve

    if address == "local":
        ray.init()
    else:
        ray.init(address=address)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application(recipe, scaling), name=APP_NAME, route_prefix="/")
        log.warning(
            "llmcat api on Ray Serve at http://%s:%d (Ctrl-C or SIGTERM stops it)", host, port
        )
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        serve.delete(APP_NAME)
        if address == "local":
            serve.shutdown()  # type: ignore[no-untyped-call]
            ray.shutdown()

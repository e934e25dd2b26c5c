"""The Ray Serve deployment as built (no cluster: .ci/run serves 1,050 products through it on a
local one, equal to the single process, and checks the autoscaler adds a replica)."""

from __future__ import annotations

import pytest

from llmcat.api.config import ApiConfig
from llmcat.api.ray_serve import Scaling, _Replica, application
from llmcat.api.recipe import ApiRecipe
from llmcat.cli.main import main
from llmcat.config.options import ClassifyOptions
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.taxonomy.tree import Taxonomy
from tests.conftest import require


def recipe() -> ApiRecipe:
    options = ClassifyOptions(strategy="embedding", embedding_model="hashing")
    return ApiRecipe(Taxonomy.from_labels(["Shoes", "Toys"]), options, Settings(), ApiConfig())


def test_the_deployment_autoscales_within_the_replicas_asked_for() -> None:
    try:
        import ray.serve  # noqa: F401
    except ImportError:
        require(False, "ray[serve] (the 'ray' extra)")
    app = application(recipe(), Scaling(min_replicas=1, max_replicas=3, target_ongoing=4))
    deployment = app._bound_deployment
    autoscaling = deployment._deployment_config.autoscaling_config
    assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 3)
    assert autoscaling.target_ongoing_requests == 4
    assert deployment._deployment_config.max_ongoing_requests == 64
    assert deployment.ray_actor_options["num_cpus"] == 1.0


def test_each_replica_builds_the_app_of_the_recipe() -> None:
    built = _Replica(recipe()).__serve_build_asgi_app__()
    assert {"/v1/classify", "/readyz"} <= {getattr(r, "path", "") for r in built.routes}


def test_replicas_are_checked() -> None:
    with pytest.raises(ConfigError, match="1 <= min <= max"):
        Scaling(min_replicas=3, max_replicas=2)
    assert main(["api", "--labels", "a,b", "--ray", "--ray-replicas", "two"]) == 2

"""Property-based fuzzing of the live server's OpenAPI surface: no input gives a 500.

Every operation of ``/openapi.json`` gets requests generated from its schema
(schemathesis, bounded in examples); the only check is that none is a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests._serve_helpers import DIAMOND, SERVE_GRAPHS, ServeProcess

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """``graphctl serve`` in its own process, as users run it (outside pytest's
    warnings-as-errors, which would turn a model's numeric warning into a failure)."""
    with ServeProcess([str(DIAMOND), str(SERVE_GRAPHS / "calc.yaml")]) as server:
        server.wait_ready()
        yield server.url


def test_no_generated_request_gives_a_server_error(url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {operation.path for operation in operations}
    assert {"/diamond", "/calc", "/v2/models/{graph}/infer", "/readyz"} <= paths
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(timeout=30)
            case.validate_response(response, checks=[not_a_server_error])

        check()

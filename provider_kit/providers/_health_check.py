"""The model listing and the health check of an HTTP provider: ``models()`` reads every page of
the listing; ``health_check()`` reads its first page (or the type's health request) once,
without retries, and never raises. Whether a model counts as listed is ``_listing``'s rule.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

from .._retry import Deadline
from ..errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
)
from ..types import HealthStatus
from ._calls import RequestSpec
from ._listing import follow_pages, listed, listing_problem, missing_reason
from ._settings import ProviderSettings

#: Seconds a health check may take when the caller gives no timeout.
DEFAULT_HEALTH_TIMEOUT = 10.0


class HealthChecks(ProviderSettings):
    """The listing and health-check layer of ``HTTPProvider``: its public methods and hooks."""

    #: The model listing (GET), relative to ``base_url``; its first page is also the health
    #: check's request. "" when the type has none.
    MODELS_PATH: ClassVar[str] = ""

    # -- hooks

    def _health_request(self) -> RequestSpec:
        """The request of a health check that does not look for the model: ``MODELS_PATH``."""
        return RequestSpec(self.MODELS_PATH, method="GET")

    def _health_problem(self, data: Any) -> Optional[str]:
        """A reason the provider is unusable although its health endpoint answered, or None.
        Used when the model is not checked (``check_model = false``). By default the answer
        must be an OpenAI-shaped model list (``{"data": [...]}``)."""
        return listing_problem(data)

    def _models_request(self, query: Optional[Dict[str, str]]) -> Optional[RequestSpec]:
        """The request for one page of the model listing: the first when ``query`` is None,
        else the page ``_models_page`` pointed to. None when the type has no listing."""
        if not self.MODELS_PATH:
            return None
        return RequestSpec(self.MODELS_PATH, method="GET", query=query)

    def _models_page(self, data: Any) -> Tuple[List[str], Optional[Dict[str, str]]]:
        """The ids on one page of the model listing, and the query of the next page (None
        after the last one)."""
        raise NotImplementedError

    def _serves(self, served: Sequence[str]) -> bool:
        """Whether the configured model is among the ``served`` ids (see ``_listing``)."""
        return listed(self.model, served)

    def _missing_model(self, served: Sequence[str]) -> str:
        return missing_reason(self.model, served)

    # -- the Provider protocol: models and health

    def models(self, timeout: Optional[float] = None) -> List[str]:
        """The ids of the models the server serves, in the order it lists them (every page).

        :param timeout: deadline in seconds for the whole listing, every page and retry
            included (default: the provider's ``timeout``).
        :raises ProviderError: a subclass per failure, as for ``complete``.
        :raises ConfigError: for a bad ``timeout``, or a provider that cannot work as configured.
        """
        seconds = self._check_timeout(timeout) if timeout is not None else self.timeout
        self.validate_config()
        return self._list_models(Deadline(seconds), max_retries=None)

    def _list_models(self, deadline: Deadline, *, max_retries: Optional[int]) -> List[str]:
        def fetch(query: Dict[str, str]) -> Tuple[List[str], Optional[Dict[str, str]]]:
            request = self._models_request(query or None)  # {}: the first page
            if request is None:
                raise ConfigError(f"{self.TYPE} provider {self.name!r}: this provider type has no model listing")
            result = self._transport.request_json(
                request.method, request.target, body=request.body, deadline=deadline, max_retries=max_retries
            )
            with self._shape_errors(result.request_id):
                return self._models_page(result.data)

        return follow_pages(self.name, fetch, {})

    def health_check(self, timeout: Optional[float] = None) -> HealthStatus:
        """Check that the provider answers, accepts the credentials and serves the configured
        model (when its listing can say so and ``check_model`` is on); never raises.

        :param timeout: deadline in seconds (default 10 s, or the provider's timeout if lower).
        """
        started = time.monotonic()
        try:
            seconds = (
                self._check_timeout(timeout)
                if timeout is not None
                else min(self.timeout, DEFAULT_HEALTH_TIMEOUT)
            )
            self.validate_config()
            # One attempt: a health check reports the state now, it does not wait for recovery.
            deadline = Deadline(seconds)
            if self.check_model and self._models_request(None) is not None:
                served = self._list_models(deadline, max_retries=0)
                problem = None if self._serves(served) else self._missing_model(served)
            else:
                request = self._health_request()
                result = self._transport.request_json(
                    request.method, request.target, body=request.body, deadline=deadline, max_retries=0
                )
                with self._shape_errors(result.request_id):
                    problem = self._health_problem(result.data)
        except ConfigError as error:
            return HealthStatus(self.name, False, time.monotonic() - started, f"misconfigured: {error}")
        except ProviderError as error:
            return HealthStatus(self.name, False, time.monotonic() - started, self._health_reason(error))
        if problem:
            return HealthStatus(self.name, False, time.monotonic() - started, problem)
        return HealthStatus(self.name, True, time.monotonic() - started)

    def _health_reason(self, error: ProviderError) -> str:
        detail = str(error)
        if detail.startswith(f"{self.name}: "):
            detail = detail[len(self.name) + 2 :]
        if isinstance(error, ProviderTimeoutError):
            kind = "timeout"
        elif isinstance(error, ProviderConnectionError):
            kind = "unreachable"
        elif isinstance(error, AuthenticationError):
            kind = "unauthorised"
        elif isinstance(error, InvalidRequestError) and error.status_code == 404:
            kind = "not found"
        else:
            kind = "error"
        return f"{kind}: {detail}"

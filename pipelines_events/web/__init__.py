"""The read-only web page of a results log (the ``web`` extra: Starlette and uvicorn).

:func:`create_app` builds the ASGI app; ``pipelines-events serve`` runs it with uvicorn.
"""

from pipelines_events.web.app import CSP, create_app

__all__ = ["CSP", "create_app"]

"""The mlpulse server: a FastAPI app over the embedded store, run by ``mlpulse serve``.

Modules: ``config`` (settings), ``keys`` (API keys), ``bodies`` (request parsing and
limits), ``errors`` (JSON errors), ``routes`` (``/api/v1``, a module per area), ``app``
(the ASGI app over a :class:`~mlpulse.service.Service`), ``health`` (store health),
``logs`` (JSON logs), ``run`` (uvicorn).
"""

from .app import create_app
from .config import ServerConfig
from .keys import KeyStore
from .run import serve

__all__ = ["KeyStore", "ServerConfig", "create_app", "serve"]

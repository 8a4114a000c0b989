"""The typed keys of the app's shared state and of a request's state (a leaf module: everything
that reads the app's state imports these, and they import nothing of the relay but types)."""

from __future__ import annotations

from aiohttp import web

from relay.config import Config
from relay.domain import Principal
from relay.events import Events
from relay.runtime import Runtime
from relay.signin import SignIn
from relay.store import Store
from relay.tasks import Videos
from relay.upstream import Http
from relay.workers.copier import Copier
from relay.workers.health import HealthSync
from relay.workers.poller import Poller
from relay.workers.webhooks import Sender

CONFIG = web.AppKey("config", Config)  # as loaded at start (server settings hold until restart)
EVENTS = web.AppKey("events", Events)
STORE = web.AppKey("store", Store)
HTTP = web.AppKey("http", Http)
RUNTIME = web.AppKey("runtime", Runtime)
VIDEOS = web.AppKey("videos", Videos)
POLLER = web.AppKey("poller", Poller)
COPIER = web.AppKey("copier", Copier)
SENDER = web.AppKey("sender", Sender)
HEALTH = web.AppKey("health", HealthSync)
STARTED_AT = web.AppKey("started_at", float)
SIGNIN = web.AppKey("signin", SignIn)  # sessions, tokens, sign-in throttles (survive reloads)

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
SESSION = web.RequestKey("session", int)  # the dashboard session a request came with

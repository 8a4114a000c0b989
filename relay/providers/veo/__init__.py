"""Google Veo on the Gemini API, `provider = "veo"`: request.py and answers.py translate,
adapter.py talks. Vertex AI (`veo-vertex`) is not here: it needs OAuth2 service-account tokens
(RS256 JWTs), and the standard library cannot sign RSA."""

from relay.providers.veo.adapter import VeoProvider

__all__ = ["VeoProvider"]

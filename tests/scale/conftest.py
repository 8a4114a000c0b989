"""Several relays on one PostgreSQL and one bucket: the servers the store and S3 tests use."""

from tests.s3server import s3_server  # noqa: F401 - a session fixture
from tests.store.conftest import pg_cluster  # noqa: F401 - a session fixture

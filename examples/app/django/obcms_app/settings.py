"""Settings of the example app. The database stack's URLs arrive as files
(uploaded 0600 by examples/app/index.ts); the environment names the files."""
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit


def read_secret(variable):
    """The contents of the file named by environment variable `variable`."""
    return Path(os.environ[variable]).read_text().strip()


SECRET_KEY = read_secret("SECRET_KEY_FILE")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
INSTALLED_APPS = ["notes"]
# Reads see the client's own writes: read_your_writes.py.
MIDDLEWARE = ["obcms_app.read_your_writes.ReadYourWritesMiddleware"]
ROOT_URLCONF = "obcms_app.urls"
WSGI_APPLICATION = "obcms_app.wsgi.application"
USE_TZ = True
TIME_ZONE = "Asia/Manila"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def database(url, ca_file=None):
    """A DATABASES entry for one of the database stack's postgresql:// URLs."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    if ca_file and "sslmode" in options:
        # PgBouncer speaks TLS: check its certificate against the stack's CA, name included.
        options.update(sslmode="verify-full", sslrootcert=ca_file)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username),
        "PASSWORD": unquote(parts.password),
        "HOST": parts.hostname,
        "PORT": parts.port,
        "OPTIONS": options,
        # PgBouncer keeps the server connections; Django opens one per request.
        "CONN_MAX_AGE": 0,
        # Transaction pooling: a cursor may not outlive its transaction,
        # the next one may run on another server connection.
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }


CA_FILE = os.environ.get("DATABASE_CA_FILE")
DATABASES = {
    "default": database(read_secret("DATABASE_URL_FILE"), CA_FILE),
    "replica": database(read_secret("READONLY_DATABASE_URL_FILE"), CA_FILE),
}
DATABASE_ROUTERS = ["obcms_app.read_your_writes.ReadYourWritesRouter"]
